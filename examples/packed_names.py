"""Which language is this word from? Variable-length strings through a packed LSTM.

PyTorch's classic tutorial classifies surnames by language with a character-level RNN. Here
the words come from three made-up languages (nothing to download), each a small generator of
syllables, so that a word's letters give its language away:

* "kana": consonant-vowel syllables            (e.g. "tomikasu", "niwa")
* "nord": consonant clusters and hard endings  (e.g. "strand", "bjork")
* "ilo":  vowels and soft consonants           (e.g. "ailue", "leona")

Words are 3 to 12 characters long, so a batch holds strings of different lengths. The
pipeline is the one a PyTorch user writes:

    characters → ids (0 = padding) → pad_sequence → Embedding(padding_idx=0)
      → pack_padded_sequence(lengths, enforce_sorted=False) → LSTM
      → h_n[-1]: each word's own last state → Linear → CrossEntropyLoss

The packed LSTM runs every word to its own end and never reads the padding: a short word in
a batch of long ones gets exactly the prediction it gets alone (checked at the end).

Run it:  python examples/packed_names.py      (about ten seconds on a laptop CPU)
"""
import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn, optim
from tinygrad_rnn.backend import np  # host NumPy, for making data
from tinygrad_rnn.nn.utils.rnn import pack_padded_sequence, pad_sequence

tg.manual_seed(0)
rng = np.random.default_rng(0)
LANGUAGES = ("kana", "nord", "ilo")
SYLLABLES = {
    "kana": [c + v for c in "kstnhmyrw" for v in "aiueo"],
    "nord": [o + v + c for o in ("str", "sk", "bj", "fj", "kn", "gr", "sv", "tr", "h")
             for v in "aeiouy" for c in ("nd", "rn", "ld", "st", "g", "k", "rd", "")],
    "ilo": ["a", "e", "i", "o", "u", "ai", "eo", "ua", "la", "le", "lu", "na", "no", "mi"],
}
PAD = 0                                      # id 0 is padding; letters are 1 … 26


# ------------------------------------------------------------------------- the data
def word(language):
    """A word of 3 to 12 letters made of the language's syllables."""
    letters = ""
    while len(letters) < rng.integers(3, 13):
        letters += rng.choice(SYLLABLES[language])
    return letters[:12]


def batch(n):
    """n random words: their ids as a list of int64 Tensors ``(length,)``, and the labels."""
    labels = rng.integers(0, len(LANGUAGES), n)
    words = [word(LANGUAGES[k]) for k in labels]
    ids = [Tensor(np.array([ord(ch) - ord("a") + 1 for ch in w])) for w in words]
    return words, ids, Tensor(labels)


# ------------------------------------------------------------------------ the model
class WordClassifier(nn.Module):
    """ids (N words of different lengths) → Embedding → packed LSTM → h_n[-1] → Linear."""

    def __init__(self, embed=8, hidden=32):
        super().__init__()
        self.embed = nn.Embedding(27, embed, padding_idx=PAD)
        self.lstm = nn.LSTM(embed, hidden, batch_first=True)
        self.fc = nn.Linear(hidden, len(LANGUAGES))

    def forward(self, ids):
        lengths = [len(w) for w in ids]
        padded = pad_sequence(ids, batch_first=True, padding_value=PAD)     # (N, L_max)
        vectors = self.embed(padded)                                        # (N, L_max, E)
        packed = pack_padded_sequence(vectors, lengths, batch_first=True,
                                      enforce_sorted=False)
        _, (h_n, _) = self.lstm(packed)          # h_n: each word's state after its last letter
        return self.fc(h_n[-1])                  # (N, 3), in the words' own order


model = WordClassifier()
opt = optim.Adam(model.parameters(), lr=0.01)
loss_fn = nn.CrossEntropyLoss()

for step in range(1, 301):
    _, ids, labels = batch(64)
    loss = loss_fn(model(ids), labels)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 50 == 0:
        print(f"step {step:3d}  loss {loss.item():.3f}")

# -------------------------------------------------------------------- held-out words
model.eval()
words, ids, labels = batch(500)
with tg.no_grad():
    predicted = model(ids).argmax(axis=-1).numpy()
accuracy = (predicted == labels.numpy()).mean()
print(f"\nheld-out accuracy: {accuracy:.3f} (guessing: {1 / len(LANGUAGES):.3f})")
for w, k in list(zip(words, predicted))[:8]:
    print(f"  {w:12s} -> {LANGUAGES[k]}")

# A word's prediction does not depend on the lengths of the words batched with it.
with tg.no_grad():
    together = model(ids[:20]).numpy()
    alone = np.concatenate([model([w]).numpy() for w in ids[:20]])
print(f"\nbatched vs alone, largest difference of the logits: {abs(together - alone).max():.1e}")
