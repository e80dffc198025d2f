"""`make demo`: one course cycle, run the way a newcomer first sees the kit."""
