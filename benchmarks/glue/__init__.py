"""GLUE data: what a task is (`types`), and the two readers `benchmarks.tasks.read_split` dispatches to:
`tsv` (the GLUE download script's `glue_data` folders) and `hub` (the Hugging Face hub cache)."""
