#!/usr/bin/env python3
"""Writes the small seed inputs of tests/fuzz/corpus/ (run once; the files are checked in).

Each seed is a byte string in the harness's own input layout (see the fz_u8 reads at the top of
each harness): a few shapes, methods, flags and float patterns that reach the main paths quickly.
"""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def put(harness, name, data):
    d = os.path.join(here, 'corpus', harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), 'wb') as f:
        f.write(bytes(data))


def f32(x):
    return struct.pack('<f', x)


def raw_floats(vals):
    out = b''
    for v in vals:
        out += b'\x00' + f32(v)  # fz_float mode 0: raw bits
    return out


vals = [0.0, -0.0, 0.3, -1.7, 2.5, 5.0, 6.0, 100.0, 1e-3, -448.0, 3.5, 0.75, 1.25, -0.25, 7.0, 1e-40]
# quantize: method, shape, cols, ld, dtype, flags, flags2, nparams, then (importance), emode, elements
for method in range(6):
    for flags in (0x00, 0x01, 0x04, 0x40, 0x24, 0x81):
        hdr = bytes([method, 1, 31, 1, 0, flags, 0x00, 0])
        imp = bytes([0] * 32) if flags & 0x20 else b''
        put('quantize', 'm%d_f%02x' % (method, flags), hdr + imp + b'\x00' + raw_floats(vals * 4))
put('quantize', 'mx', bytes([0, 2, 63, 0, 0, 0x02, 0, 0]) + b'\x00' + raw_floats(vals * 8))
put('quantize', 'modelopt', bytes([0, 2, 40, 0, 0, 0x08, 0, 0]) + b'\x00' + raw_floats(vals * 6))
put('quantize', 'f16', bytes([0, 3, 20, 2, 1, 0x04, 0, 0]) + b'\x01' + bytes(range(200)))
put('quantize', 'bf16', bytes([1, 3, 20, 2, 2, 0x04, 0, 0]) + b'\x01' + bytes(range(200)))
put('quantize', 'tile', bytes([0, 0xC2, 7, 0, 0, 0x01, 0, 0]) + b'\x01' + bytes(range(256)) * 8)
put('quantize', 'gscale', bytes([0, 1, 15, 0, 0, 0, 0, 1, 150, 1, 9]) + b'\x00' + raw_floats(vals))
put('quantize', 'badshape', bytes([0, 1, 15, 0, 0, 0, 0x0C, 0]))

# dequantize: format, layout, dtype, rows, cols, ld, flags, global scale (fz_float), codes, smode, scales
for fmt in (0, 1):
    for lay in (0, 1):
        for dt in (0, 1, 2):
            put('dequantize', 'f%d_l%d_d%d' % (fmt, lay, dt),
                bytes([fmt, lay, dt, 2, 47, 1, 0x07]) + b'\x01\x0e' + bytes(range(256)) + b'\x00' + bytes(range(0, 256, 3)))
put('dequantize', 'badscale', bytes([0, 0, 0, 1, 16, 0, 0x01]) + b'\x01\x0e' + bytes(8) + b'\x01' + b'\x7f')
put('dequantize', 'nan_gs', bytes([0, 0, 0, 1, 16, 0, 0x00]) + b'\x01\xff' + bytes(8) + b'\x00' + b'\x38')

# layout: what, (buffers: rows, sc, bytes, mode), sizes...
put('layout', 'small', bytes([0x01, 5, 3]) + bytes(range(15)) + b'\x01' + bytes(40))
put('layout', 'tiles', bytes([0x21, 130, 5]) + bytes(range(256)) * 3 + b'\x03' + bytes(40))
put('layout', 'edges', bytes([0xE0]) + bytes([0, 0, 18, 18, 20, 21, 22]) * 8)

# convert: what, then per scalar (fz_float, byte, u16), arrays, status
put('convert', 'scalars', bytes([0x07]) + b''.join(b'\x01' + bytes([k]) + bytes([k * 7 % 256]) + struct.pack('<H', k * 331 % 65536) for k in range(8)))
put('convert', 'arrays', bytes([0x08]) + b'\x01\x00\x38\x00' + bytes([0, 40, 0]) + bytes(range(256)) * 2)
put('convert', 'arrays_f16', bytes([0x08]) + b'\x01\x00\x38\x00' + bytes([1, 33, 0x80]) + bytes(range(256)))
put('convert', 'nan', bytes([0x00, 0x01, 255, 0x7f, 0x00, 0x7e]))

# rounder: method, out, in, flags, iterations, nparams, ..., calibration, progress, W dtype, ld, W
for method in (0, 1):
    for flags in (0x00, 0x02, 0x06, 0x08, 0x0A, 0x01):
        put('rounder', 'm%d_f%02x' % (method, flags),
            bytes([method, 2, 31, flags, 3, 0]) + bytes([0, 2, 0]) + bytes((i * 37) % 256 for i in range(600)))
put('rounder', 'cancel', bytes([0, 1, 15, 0x00, 8, 0]) + bytes([0, 3, 0]) + bytes(range(100)) + bytes([0x03, 0, 0]) + bytes(range(64)))

# checkpoint: mode, then bytes (see the harness)
def st_file(tensors, meta=True):
    import json
    hdr = {'__metadata__': {'format': 'pt'}} if meta else {}
    data = b''
    for name, dt, shape, payload in tensors:
        hdr[name] = {'dtype': dt, 'shape': shape, 'data_offsets': [len(data), len(data) + len(payload)]}
        data += payload
    h = json.dumps(hdr).encode()
    return struct.pack('<Q', len(h)) + h + data

layer = st_file([('l.weight', 'U8', [2, 8], bytes(range(16))), ('l.weight_scale', 'F8_E4M3', [2, 1], b'\x38\x40'),
                 ('l.weight_scale_2', 'F32', [], f32(0.5)), ('l.input_scale', 'F32', [1], f32(1.0)),
                 ('x', 'BF16', [3], b'\x80\x3f' * 3)])
def raw(b, mode=0):
    return bytes([mode]) + struct.pack('<H', len(b)) + b


put('checkpoint', 'raw_layer', raw(layer))
put('checkpoint', 'raw_empty', raw(st_file([], meta=False)))
put('checkpoint', 'raw_ct', raw(st_file([('m.weight_packed', 'U8', [1, 8], bytes(8)), ('m.weight_scale', 'F8_E4M3', [1, 1], b'\x7f'),
                                                ('m.weight_global_scale', 'F32', [1], f32(2.0))])))
put('checkpoint', 'header', b'\x01\x20\x00' + b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}' + f32(1.0))
for tweak in range(8):
    put('checkpoint', 'struct_%d' % tweak, bytes([0x02, 2, 1, tweak & 1, tweak]) + bytes(range(256)))
put('checkpoint', 'index', raw(layer, 0x12) + b'{"weight_map":{"l.weight":"model.safetensors"}}')
put('checkpoint', 'dir', raw(layer, 0x33) + b'{"weight_map":{"l.weight":"model.safetensors"}}')

# Regression seeds for what the fuzzers found (docs/RELIABILITY.md, "Found and fixed" / "Open").
# dequantize, 128x4 scales with an undecodable byte: the error path once read freed scratch.
put('dequantize', 'regress_uaf_128x4_badscale',
    bytes([0, 1, 0, 2, 40, 0, 0x01]) + b'\x01\x0e' + bytes(range(72)) + b'\x01' + bytes([0x38, 0x7F]) + bytes([0x38] * 510))
# layout: scales_size with rows = INT64_MAX - 127 (round_up_ok overflowed computing v + m - 1)
put('layout', 'regress_round_up_overflow', bytes([0x00, 0, 1, 21, 131, 21, 131, 131]))
# quantize, MXFP4 with elements near FLT_MAX: the nearest MXFP4 value 2^128 decodes to Inf (open)
put('quantize', 'regress_mxfp4_near_flt_max',
    bytes([0, 1, 31, 0, 0, 0x06, 0, 0]) + b'\x00' + raw_floats([3.38e38, -3.0e38, 1.0, 2.9e38] * 8))
# quantize, ModelOpt recipe with a block whose E4M3(S) underflows (open: codes 0x7 for zeros)
put('quantize', 'regress_modelopt_underflow',
    bytes([0, 1, 40, 0, 0, 0x08, 0, 0]) + b'\x00' + raw_floats([1000.0] + [0.0] * 15 + [1e-6, 0.0, -1e-6] + [0.0] * 13))

# 8 or more blocks per row: the AVX2 row kernels (MAX, 4/6)
for method in (0, 1):
    put('quantize', 'avx2_rows_m%d' % method, bytes([method, 2, 0xF6, 0, 0, 0x00, 0, 0]) + b'\x00' + raw_floats(vals * 26))
