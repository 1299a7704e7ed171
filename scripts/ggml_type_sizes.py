#!/usr/bin/env python3
"""Prints every ggml type id with its name, elements per block and bytes per block, as the ggml
C library itself reports them (ggml_type_name, ggml_blck_size, ggml_type_size).

src/tensor/dtype.rs's block table (and its test `ggml_block_sizes_match_the_ggml_library`) was
checked against this output for libggml-python 0.20.2 (`pip install libggml-python`). The
`gguf` Python package's GGML_QUANT_SIZES is not used: it still lists Q8_1 as 40 bytes per block,
while ggml's block_q8_1 is 36 (two f16 and 32 int8).

Usage: scripts/ggml_type_sizes.py [path/to/libggml-base.so]
"""
import ctypes
import pathlib
import sys

if len(sys.argv) > 1:
    lib_path = sys.argv[1]
else:
    import libggml  # noqa: F401  (installed by libggml-python)

    lib_path = str(pathlib.Path(libggml.__file__).parent / "lib64" / "libggml-base.so")

lib = ctypes.CDLL(lib_path)
lib.ggml_type_size.restype = ctypes.c_size_t
lib.ggml_blck_size.restype = ctypes.c_int64
lib.ggml_type_name.restype = ctypes.c_char_p
count = 43  # GGML_TYPE_COUNT in the ggml.h of libggml 0.20.2
for type_id in range(count):
    name = lib.ggml_type_name(type_id).decode()
    print(type_id, name, lib.ggml_blck_size(type_id), lib.ggml_type_size(type_id))
