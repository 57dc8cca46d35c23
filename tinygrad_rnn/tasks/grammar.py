"""A tiny English-like grammar that writes the default corpus of the ``charlm`` task.

The text is a fixed function of :data:`CORPUS_SEED`, so every install trains on the same
characters, and nothing has to be downloaded. It is small enough to learn in seconds but has
the structure a character model can pick up: a few dozen words spelled consistently,
sentences of the shape *subject verb [object] [place]*, spaces and full stops::

    the old fox follows a small robot near the river. anna sleeps.
"""
from __future__ import annotations

from .. import backend

CORPUS_SEED = 1234
CORPUS_CHARS = 60_000

DETERMINERS = ["the", "a", "every", "one"]
ADJECTIVES = ["small", "red", "quiet", "happy", "old", "clever", "tired", "brave"]
NOUNS = ["cat", "dog", "bird", "fox", "child", "robot", "teacher", "farmer"]
NAMES = ["anna", "ben", "clara", "tom"]
TRANSITIVE = ["sees", "likes", "follows", "finds", "helps", "watches"]
INTRANSITIVE = ["sleeps", "runs", "sings", "waits", "smiles"]
PREPOSITIONS = ["near", "behind", "under", "with"]
PLACES = ["the river", "the house", "the tree", "the old bridge", "the garden"]


def _noun_phrase(rng) -> str:
    """``anna`` | ``the fox`` | ``a clever robot``."""
    if rng.random() < 0.25:
        return str(rng.choice(NAMES))
    words = [str(rng.choice(DETERMINERS))]
    if rng.random() < 0.5:
        words.append(str(rng.choice(ADJECTIVES)))
    words.append(str(rng.choice(NOUNS)))
    return " ".join(words)


def sentence(rng) -> str:
    """One sentence: subject, verb, an object for transitive verbs, sometimes a place."""
    words = [_noun_phrase(rng)]
    if rng.random() < 0.6:
        words += [str(rng.choice(TRANSITIVE)), _noun_phrase(rng)]
    else:
        words.append(str(rng.choice(INTRANSITIVE)))
    if rng.random() < 0.3:
        words += [str(rng.choice(PREPOSITIONS)), str(rng.choice(PLACES))]
    return " ".join(words) + "."


def corpus(chars: int = CORPUS_CHARS, seed: int = CORPUS_SEED) -> str:
    """At least ``chars`` characters of sentences, a few per line."""
    rng = backend.np.random.default_rng(seed)
    lines, length = [], 0
    while length < chars:
        line = " ".join(sentence(rng) for _ in range(int(rng.integers(1, 4))))
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines) + "\n"
