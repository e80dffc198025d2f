"""An offline suite of small GLUE-style tasks, written in the `glue_data` layout.

Every GLUE file format, label vocabulary and metric is exercised without a
download. Two tasks carry meaning a pretrained model knows and a model trained
from scratch on a few hundred examples cannot learn: their labels are a
function of what the words mean, and the words of the dev and test sets are
not in the training set.

| task | example | rule for the label |
|---|---|---|
| SST-2 | a review sentence ("The soundtrack felt dreadful.") | 1 = its opinion word is positive, 0 = negative; opinion words of train and of dev/test are disjoint (`POSITIVE`, `NEGATIVE`) |
| STS-B | two sentences about everyday scenes | 5 = paraphrases (`PARAPHRASES`: same scene, different words), 2.5 = two scenes of the same topic, 0 = unrelated topics; scenes of train and of dev/test are disjoint |

The other tasks' text is real English prose, sentences of the Python
documentation shipped with CPython (`pydoc_data.topics`), and their labels are
SYNTHETIC, derived by rule from edits to those sentences:

| task | example | rule for the label |
|---|---|---|
| CoLA | a sentence | 1 = as written, 0 = its words shuffled |
| MRPC, QQP | two sentences / questions | 1 = one word dropped from the first, 0 = a different sentence |
| MNLI, AX | premise, hypothesis | entailment = a prefix of the premise, contradiction = premise negated, neutral = another sentence |
| QNLI | question, sentence | entailment = the sentence contains the word asked about |
| RTE | premise, hypothesis | entailment = a prefix, not_entailment = negated or unrelated |
| WNLI | two sentences | 1 = the second is the end of the first, 0 = that end negated |

MNLI matched and mismatched draw premises from different documentation
topics (the suite's "genres"). The files are byte-for-byte reproducible for a
given seed and sizes.
"""

import os
import random
import re

from pydoc_data.topics import topics

AUXILIARIES = ("is", "are", "can", "must", "may", "will", "does", "should", "was")

# Opinion words: even positions go to train, odd ones to dev and test, so a score above chance on dev
# needs knowing what unseen words mean.
POSITIVE = ("wonderful", "superb", "delightful", "excellent", "brilliant", "charming", "moving", "fantastic",
            "enjoyable", "gorgeous", "touching", "terrific", "splendid", "lovely", "marvelous", "outstanding",
            "impressive", "uplifting", "hilarious", "beautiful", "great", "magnificent", "fresh", "engaging")
NEGATIVE = ("awful", "dreadful", "boring", "terrible", "dull", "clumsy", "tedious", "horrible", "lifeless",
            "annoying", "bland", "painful", "disappointing", "stupid", "mediocre", "ugly", "pointless", "tiresome",
            "lousy", "miserable", "unbearable", "awkward", "shallow", "forgettable")
REVIEW_SUBJECTS = ("The film", "The acting", "The soundtrack", "The story", "This movie", "The ending", "The script",
                   "The cast", "The dialogue", "The direction", "The plot", "Every scene", "The whole thing",
                   "The lead performance", "The camera work", "The second half")
REVIEW_VERBS = ("was", "felt", "seemed", "is", "looked", "turned out")
REVIEW_ENDINGS = (".", " from start to finish.", ", honestly.", " to me.", " in every way.", " overall.")

# Scenes, each said three ways, grouped by topic. Even-numbered scenes of a topic go to train, odd to dev/test.
PARAPHRASES = {
    "animals": [("A dog is running across the field.", "A puppy races over the grass.", "The hound sprints through the meadow."),
                ("The cat is sleeping on the sofa.", "A kitten naps on the couch.", "The cat dozes on the settee."),
                ("A bird is singing in the tree.", "A songbird chirps among the branches.", "The bird sings up in the tree."),
                ("The horse is eating hay.", "A pony munches on dry grass.", "The horse feeds on fodder."),
                ("Two dogs are playing with a ball.", "A pair of puppies chase a ball.", "Two hounds play fetch together."),
                ("A fish swims in the pond.", "The fish glides through the pool.", "A fish is swimming in the small lake.")],
    "cooking": [("A man is slicing onions.", "A guy chops an onion.", "The man cuts onions into pieces."),
                ("The woman is baking bread.", "A lady bakes a loaf.", "The woman makes bread in the oven."),
                ("Someone is frying eggs in a pan.", "A person cooks eggs in a skillet.", "Eggs are being fried in a pan."),
                ("A chef is stirring the soup.", "The cook mixes the broth.", "A chef stirs a pot of soup."),
                ("A boy is peeling a potato.", "The kid removes the skin of a potato.", "A young boy peels potatoes."),
                ("She is pouring milk into a glass.", "A woman fills a glass with milk.", "Milk is poured into a cup by her.")],
    "sports": [("A man is riding a bicycle.", "A guy cycles down the road.", "The man rides his bike."),
               ("The girl is swimming in the pool.", "A young woman swims laps.", "The girl swims in the water."),
               ("Two men are playing tennis.", "A pair of men play a tennis match.", "Two guys hit a tennis ball back and forth."),
               ("A team is playing football.", "Players kick a soccer ball around.", "A soccer team plays a match."),
               ("A woman is jogging in the park.", "A lady runs through the park.", "The woman goes for a run in the park."),
               ("The boy is climbing a wall.", "A kid scales a climbing wall.", "The young boy climbs up the wall.")],
    "weather": [("It is raining heavily in the city.", "Heavy rain falls on the town.", "The city is soaked by a downpour."),
                ("Snow covers the mountains.", "The peaks are white with snow.", "The mountains are blanketed in snow."),
                ("The sun is shining brightly.", "It is a bright and sunny day.", "Sunlight is pouring down."),
                ("Strong winds are blowing the trees.", "A gale shakes the trees.", "The trees sway in a strong wind."),
                ("Thunder rumbles over the hills.", "A storm roars above the hills.", "Thunder booms across the hills."),
                ("Fog hides the harbour.", "The port is covered in mist.", "A thick fog lies over the harbour.")],
}
NEGATIONS = ("not", "no", "never", "cannot")


def documentation_sentences():
    """Plain declarative sentences of 6 to 22 words, with their topic."""
    sentences, seen = [], set()
    for topic in sorted(topics):
        for sentence in re.split(r"(?<=[.!?])\s+", topics[topic]):
            sentence = " ".join(sentence.split())
            words = sentence.split()
            if (
                6 <= len(words) <= 22
                and re.fullmatch(r"[A-Za-z ,.'\-]+", sentence)
                and sentence[0].isupper()
                and sentence.endswith(".")
                and sentence not in seen
            ):
                seen.add(sentence)
                sentences.append((sentence, topic))
    return sentences


def negate(sentence):
    """Insert "not" after the first auxiliary verb; None if there is none."""
    words = sentence.split()
    for position, word in enumerate(words):
        if word in AUXILIARIES:
            return " ".join(words[: position + 1] + ["not"] + words[position + 1 :])
    return None


def is_affirmative(sentence):
    return not any(word in NEGATIONS for word in sentence.lower().split())


def prefix(sentence, share=0.6):
    words = sentence.rstrip(".").split()
    return " ".join(words[: max(3, int(len(words) * share))]) + "."


def drop_one_word(sentence, rng):
    words = sentence.split()
    del words[rng.randrange(1, len(words) - 1)]
    return " ".join(words)


def as_question(sentence):
    return "Is it true that " + sentence[0].lower() + sentence[1:].rstrip(".") + "?"


class SuiteWriter:
    """Builds each task's rows from the sentence pool and writes the TSV files."""

    def __init__(self, folder, train_size, dev_size, test_size, seed):
        self.folder = folder
        self.sizes = {"train": train_size, "dev": dev_size, "test": test_size}
        self.rng = random.Random(seed)
        self.sentences = documentation_sentences()
        self.negatable = [(s, t) for s, t in self.sentences if is_affirmative(s) and negate(s)]

    def write(self):
        self.cola()
        self.sst2()
        self.mrpc()
        self.stsb()
        self.qqp()
        self.mnli()
        self.qnli()
        self.rte()
        self.wnli()
        self.diagnostic()

    # -- helpers ---------------------------------------------------------
    def pick(self, pool, count):
        return [self.rng.choice(pool)[0] for _ in range(count)]

    def other_than(self, sentence):
        while True:
            other = self.rng.choice(self.sentences)[0]
            if other != sentence:
                return other

    def save(self, task_folder, file_name, header, rows, bom=False):
        os.makedirs(os.path.join(self.folder, task_folder), exist_ok=True)
        lines = (["\t".join(header)] if header else []) + ["\t".join(map(str, row)) for row in rows]
        with open(os.path.join(self.folder, task_folder, file_name), "w", encoding="utf-8", newline="") as f:
            f.write(("\ufeff" if bom else "") + "\n".join(lines) + "\n")

    def labelled_splits(self, make_example):
        """{split: [(texts..., label)]} with balanced labels, from `make_example(label_slot)`."""
        return {split: [make_example(i) for i in range(size)] for split, size in self.sizes.items()}

    # -- tasks -----------------------------------------------------------
    def cola(self):
        def example(i):
            sentence = self.pick(self.sentences, 1)[0]
            if i % 2:
                return sentence, 1
            words = sentence.rstrip(".").split()
            self.rng.shuffle(words)
            return " ".join(words) + ".", 0

        splits = self.labelled_splits(example)
        for split in ("train", "dev"):
            rows = [("doc", label, "" if label else "*", text) for text, label in splits[split]]
            self.save("CoLA", f"{split}.tsv", None, rows)
        self.save("CoLA", "test.tsv", ("index", "sentence"), enumerate(t for t, _ in splits["test"]))

    def split_examples(self, make_example):
        """{split: [example]} from `make_example(i, held_out)`; held_out is False for train, True for dev/test."""
        return {split: [make_example(i, split != "train") for i in range(size)] for split, size in self.sizes.items()}

    def sst2(self):
        def example(i, held_out):
            words = (POSITIVE if i % 2 else NEGATIVE)[int(held_out)::2]
            sentence = (f"{self.rng.choice(REVIEW_SUBJECTS)} {self.rng.choice(REVIEW_VERBS)} "
                        f"{self.rng.choice(words)}{self.rng.choice(REVIEW_ENDINGS)}")
            return sentence, i % 2

        splits = self.split_examples(example)
        for split in ("train", "dev"):
            self.save("SST-2", f"{split}.tsv", ("sentence", "label"), splits[split])
        self.save("SST-2", "test.tsv", ("index", "sentence"), enumerate(t for t, _ in splits["test"]))

    def paraphrase_pair(self, i):
        first = self.pick(self.sentences, 1)[0]
        if i % 2:
            return first, drop_one_word(first, self.rng), 1
        return first, self.other_than(first), 0

    def mrpc(self):
        splits = self.labelled_splits(self.paraphrase_pair)
        header = ("Quality", "#1 ID", "#2 ID", "#1 String", "#2 String")
        for split in ("train", "dev"):
            rows = [(label, 2 * n, 2 * n + 1, a, b) for n, (a, b, label) in enumerate(splits[split])]
            self.save("MRPC", f"{split}.tsv", header, rows, bom=True)
        rows = [(n, 2 * n, 2 * n + 1, a, b) for n, (a, b, _) in enumerate(splits["test"])]
        self.save("MRPC", "test.tsv", ("index",) + header[1:], rows)

    def stsb(self):
        topics_sorted = sorted(PARAPHRASES)

        def example(i, held_out):
            scenes = {topic: PARAPHRASES[topic][int(held_out)::2] for topic in topics_sorted}
            topic = self.rng.choice(topics_sorted)
            scene = self.rng.choice(scenes[topic])
            first, second = self.rng.sample(scene, 2)
            if i % 3 == 0:
                return first, second, "5.000"
            if i % 3 == 1:
                other = self.rng.choice([s for s in scenes[topic] if s is not scene])
                return first, self.rng.choice(other), "2.500"
            other_topic = self.rng.choice([t for t in topics_sorted if t != topic])
            return first, self.rng.choice(self.rng.choice(scenes[other_topic])), "0.000"

        splits = self.split_examples(example)
        columns = ("index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2")
        for split in ("train", "dev", "test"):
            rows = [
                (n, "main-docs", "pydoc", "2024", f"{n:04d}", "none", "none", a, b) + ((score,) if split != "test" else ())
                for n, (a, b, score) in enumerate(splits[split])
            ]
            self.save("STS-B", f"{split}.tsv", columns + (("score",) if split != "test" else ()), rows)

    def qqp(self):
        splits = self.labelled_splits(self.paraphrase_pair)
        for split in ("train", "dev"):
            rows = [
                (n, 2 * n, 2 * n + 1, as_question(a), as_question(b), label) for n, (a, b, label) in enumerate(splits[split])
            ]
            # QQP's real files contain rows with missing fields; readers skip them.
            rows.insert(len(rows) // 2, (len(rows), 2 * len(rows), as_question(splits[split][0][0])))
            self.save("QQP", f"{split}.tsv", ("id", "qid1", "qid2", "question1", "question2", "is_duplicate"), rows)
        rows = [(n, as_question(a), as_question(b)) for n, (a, b, _) in enumerate(splits["test"])]
        self.save("QQP", "test.tsv", ("id", "question1", "question2"), rows)

    def inference_pair(self, pool, i, classes):
        premise = self.pick(pool, 1)[0]
        label = classes[i % len(classes)]
        if label == "entailment":
            return premise, prefix(premise), label
        if label == "contradiction" or (label == "not_entailment" and i % 4 == 1):
            return premise, negate(premise), label
        return premise, self.other_than(premise), label

    def mnli(self):
        topics_sorted = sorted({t for _, t in self.negatable})
        matched = set(topics_sorted[: len(topics_sorted) // 2])
        pools = {
            "matched": [(s, t) for s, t in self.negatable if t in matched],
            "mismatched": [(s, t) for s, t in self.negatable if t not in matched],
        }
        classes = ("entailment", "contradiction", "neutral")
        parse = lambda s: "( " + " ".join(s.split()) + " )"  # noqa: E731 - a one-line format
        front = ("index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse")
        front += ("sentence1_parse", "sentence2_parse", "sentence1", "sentence2")

        def rows(pool, size, gold_columns):
            out = []
            for n in range(size):
                premise, hypothesis, label = self.inference_pair(pool, n, classes)
                genre = dict(pool)[premise]
                fields = (n, n, f"{n}e", genre, parse(premise), parse(hypothesis), parse(premise), parse(hypothesis))
                out.append(fields + (premise, hypothesis) + (label,) * gold_columns)
            return out

        self.save("MNLI", "train.tsv", front + ("label1", "gold_label"), rows(pools["matched"], self.sizes["train"], 2))
        for kind in ("matched", "mismatched"):
            dev_header = front + ("label1", "label2", "label3", "label4", "label5", "gold_label")
            self.save("MNLI", f"dev_{kind}.tsv", dev_header, rows(pools[kind], self.sizes["dev"], 6))
            self.save("MNLI", f"test_{kind}.tsv", front, rows(pools[kind], self.sizes["test"], 0))

    def qnli(self):
        def example(i):
            sentence = self.pick(self.sentences, 1)[0]
            word = max(sentence.rstrip(".").split(), key=len)
            question = f"What does the documentation say about {word}?"
            if i % 2:
                return question, sentence, "entailment"
            other = self.other_than(sentence)
            while word in other.split():
                other = self.other_than(sentence)
            return question, other, "not_entailment"

        self.save_pair_task("QNLI", ("index", "question", "sentence", "label"), self.labelled_splits(example))

    def rte(self):
        classes = ("entailment", "not_entailment")
        splits = self.labelled_splits(lambda i: self.inference_pair(self.negatable, i, classes))
        self.save_pair_task("RTE", ("index", "sentence1", "sentence2", "label"), splits)

    def wnli(self):
        def ending(sentence):
            words = sentence.split()[-max(4, len(sentence.split()) // 2) :]
            return words[0].capitalize() + " " + " ".join(words[1:])

        pool = [s for s, _ in self.negatable if negate(ending(s))]

        def example(i):
            sentence = self.rng.choice(pool)
            return (sentence, ending(sentence), 1) if i % 2 else (sentence, negate(ending(sentence)), 0)

        self.save_pair_task("WNLI", ("index", "sentence1", "sentence2", "label"), self.labelled_splits(example))

    def diagnostic(self):
        classes = ("entailment", "contradiction", "neutral")
        pairs = [self.inference_pair(self.negatable, n, classes) for n in range(self.sizes["test"] * 2)]
        self.save("diagnostic", "diagnostic.tsv", ("index", "sentence1", "sentence2"), [(n, a, b) for n, (a, b, _) in enumerate(pairs)])
        header = ("Lexical Semantics", "Predicate-Argument Structure", "Logic", "Knowledge", "Domain")
        rows = [("", "", "Negation" if label == "contradiction" else "", "", "Documentation", a, b, label) for a, b, label in pairs]
        self.save("diagnostic", "diagnostic-full.tsv", header + ("Premise", "Hypothesis", "Label"), rows)

    def save_pair_task(self, task_folder, header, splits):
        for split in ("train", "dev"):
            self.save(task_folder, f"{split}.tsv", header, [(n,) + example for n, example in enumerate(splits[split])])
        rows = [(n,) + example[:-1] for n, example in enumerate(splits["test"])]
        self.save(task_folder, "test.tsv", header[:-1], rows)


def write_builtin_suite(folder, train_size=64, dev_size=32, test_size=16, seed=0):
    """Write the suite under `folder` (same layout as glue_data) and return it."""
    SuiteWriter(folder, train_size, dev_size, test_size, seed).write()
    return folder
