#!/usr/bin/python3
"""Writes the fuzzers' seed corpus: a few tiny valid files per target and a few broken ones.

Run from the repository root: /usr/bin/python3 tests/fuzz/make_corpus.py (needs python3-numpy).
The output is deterministic, so rerunning it leaves the committed files unchanged. The two
JPEG seeds (corpus/image/{rgb,gray}.jpg, 8x8) were written once by stb_image_write's
stbi_write_jpg (quality 80) and are not regenerated here; neither are exif_orientation6.jpg
(32x16, written by PIL with EXIF orientation 6) and undefined_ac_table.jpg (found by fuzz_image: a
scan whose AC table no DHT defines, which stb 2.27 reads uninitialised).
"""
import gzip
import io
import os
import struct

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


def idx(dims, payload, type_code=8):
    return bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def npy(arr):
    b = io.BytesIO()
    np.save(b, arr)
    return b.getvalue()


def npz(**arrays):
    b = io.BytesIO()
    np.savez_compressed(b, **arrays)
    return b.getvalue()


rng = np.random.default_rng(0)
img = rng.integers(0, 256, size=(3, 4, 4), dtype=np.uint8)
lab = np.array([0, 1, 2], dtype=np.uint8)

# IDX: images and labels, raw and gzip; wrong magic, truncated, extra data.
put("idx", "images", idx([3, 4, 4], img.tobytes()))
put("idx", "images.gz", gz(idx([3, 4, 4], img.tobytes())))
put("idx", "labels", idx([3], lab.tobytes()))
put("idx", "labels.gz", gz(idx([3], lab.tobytes())))
put("idx", "rgb4d", idx([1, 2, 2, 3], bytes(range(12))))
put("idx", "bad_magic", b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
put("idx", "truncated", idx([3, 4, 4], img.tobytes())[:30])
put("idx", "extra", idx([2], b"\x00\x01\x02"))
put("idx", "float_type", idx([1], b"\x00\x00\x80\x3f", type_code=0x0D))

# gzip: one member, two members, empty content, cut short, bad CRC.
one = gz(b"hello idx " * 20)
put("gzip", "one", one)
put("gzip", "two_members", one + gz(b"second"))
put("gzip", "empty_content", gz(b""))
put("gzip", "cut", one[: len(one) // 2])
bad_crc = bytearray(one)
bad_crc[-6] ^= 0xFF
put("gzip", "bad_crc", bytes(bad_crc))
put("gzip", "zero_padded", one + b"\x00" * 8)

# npy: u1 images, i8 and u1 labels, (N, 1) labels, a big-endian array, a lying shape.
put("npy", "u1_images", npy(img))
put("npy", "i8_labels", npy(lab.astype("<i8")))
put("npy", "u1_labels_n1", npy(lab.reshape(3, 1)))
put("npy", "be_i4", npy(np.array([1, -2, 3], dtype=">i4")))
put("npy", "bool", npy(np.array([True, False])))
put("npy", "scalar", npy(np.uint8(7)))
lie = bytearray(npy(lab))
lie = bytes(lie).replace(b"(3,)", b"(9,)")
put("npy", "wrong_shape", lie)
put("npy", "float", npy(np.array([1.5], dtype="<f4")))

# npz: MedMNIST-like (6 members, ZIP64 extras from numpy), Keras-like, truncated, bad CRC.
med = npz(train_images=img, val_images=img[:1], test_images=img[:2],
          train_labels=lab.reshape(3, 1), val_labels=lab[:1].reshape(1, 1), test_labels=lab[:2].reshape(2, 1))
put("npz", "medmnist_like", med)
b = io.BytesIO()
np.savez(b, x_train=img, y_train=lab)  # stored, not deflated
put("npz", "stored_keras", b.getvalue())
put("npz", "truncated", med[: len(med) // 2])
bad = bytearray(med)
bad[14] ^= 1
put("npz", "bad_crc", bytes(bad))
put("npz", "empty_zip", b"PK\x05\x06" + b"\x00" * 18)

# digits CSV: a few valid rows, plain and gzip; out of range, short row.
def row(seed, label):
    return ",".join(str((seed + i) % 17) for i in range(64)) + f",{label}\n"

rows = "".join(row(i, i % 10) for i in range(3))
put("digits_csv", "rows.csv", rows.encode())
put("digits_csv", "rows.csv.gz", gz(rows.encode()))
put("digits_csv", "floats.csv", ",".join(["0.0"] * 64 + ["1.0"]).encode() + b"\r\n")
put("digits_csv", "out_of_range.csv", ",".join(["17"] * 64 + ["1"]).encode() + b"\n")
put("digits_csv", "short.csv", b"1,2,3\n")

# images: minimal PNG (gray, RGB, RGBA) and BMP files built with zlib and struct.
import zlib


def png(w, h, color_type, channels, pixels, empty_idat=False):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\x00" + pixels[y * w * channels:(y + 1) * w * channels] for y in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0)) +
            (chunk(b"IDAT", b"") if empty_idat else b"") + chunk(b"IDAT", zlib.compress(raw, 9)) +
            chunk(b"IEND", b""))


def bmp(w, h, pixels):  # 24-bit, bottom-up rows padded to 4 bytes
    row = (w * 3 + 3) & ~3
    body = b"".join(pixels[y * w * 3:(y + 1) * w * 3] + b"\x00" * (row - w * 3) for y in reversed(range(h)))
    header = struct.pack("<2sIHHI", b"BM", 54 + len(body), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(body), 2835, 2835, 0, 0)
    return header + info + body


put("image", "gray.png", png(3, 2, 0, 1, bytes(range(6))))
put("image", "rgb.png", png(2, 2, 2, 3, bytes(range(12))))
put("image", "rgba.png", png(2, 1, 6, 4, bytes(range(8))))
put("image", "rgb.bmp", bmp(3, 2, bytes(range(18))))
put("image", "truncated.png", png(3, 2, 0, 1, bytes(range(6)))[:40])
put("image", "not_an_image", b"GIF89a")
# Valid: an empty IDAT chunk before the data (found by fuzz_image: stb_image's memcpy(NULL, p, 0)).
put("image", "empty_idat.png", png(2, 1, 6, 4, bytes(range(8)), empty_idat=True))

# list files: labeled and unlabeled, comments, CRLF and tabs, paths with blanks; a mix of
# labeled and unlabeled lines, and a file of comments only (both refused).
put("list_file", "labeled.txt", b"# images and classes\ncat/1.png 0\ndog/2.png 1\n\n/abs/3.jpg\t2\n")
put("list_file", "unlabeled.txt", b"a.png\nb c.png   # a comment\nd#e.png\n")
put("list_file", "crlf.txt", b"x y.png 3\r\n  z.bmp 12\r\n")
put("list_file", "big_label.txt", b"a.png 1234567890\nb.png 5\n")
put("list_file", "mixed.txt", b"a.png 1\nb.png\n")
put("list_file", "comments_only.txt", b"# nothing\n   \n")
# Found by the fuzzer: a carriage return between the path and its label stayed in the path.
put("list_file", "cr_before_label.txt", b"x  z.b.x m\r\r 1")
# Fill bytes before SOI, which stb skips, and a Huffman table of more than 256 codes (found by
# fuzz_image: the table check used to start only at a leading "ff d8"). Made from rgb.jpg.
with open(os.path.join(ROOT, "image", "rgb.jpg"), "rb") as f:
    jpg = bytearray(f.read())
dht = jpg.find(b"\xff\xc4")
jpg[dht + 5:dht + 21] = b"\x40" * 16  # 16 code lengths of 64 codes each
put("image", "fill_before_soi_bad_dht.jpg", b"\xff" + bytes(jpg))

# safetensors: a valid file (two tensors, an empty one, metadata), one cut short, and a shape whose
# element count wraps 64 bits (2^39 x 2^39, refused since the fuzz target was added).
def safetensors(header, data):
    h = header.encode()
    return struct.pack("<Q", len(h)) + h + data


put("safetensors", "ok.safetensors", safetensors(
    '{"b":{"dtype":"F32","shape":[2,3],"data_offsets":[8,32]},"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},'
    '"e":{"dtype":"U8","shape":[0,5],"data_offsets":[32,32]},"__metadata__":{"stage":"base"}}', bytes(range(32))))
put("safetensors", "truncated.safetensors", safetensors(
    '{"t":{"dtype":"F64","shape":[4],"data_offsets":[0,32]}}', bytes(16)))
put("safetensors", "wrapping_shape.safetensors", safetensors(
    '{"t":{"dtype":"F32","shape":[549755813888,549755813888],"data_offsets":[0,0]}}', b""))
