#!/usr/bin/env python3
"""check_error_table.py - the error table in three places must agree (issue 6).

1. the @retval lines of every NVFP4_API function in include/nvfp4/*.h,
2. the rows of docs/ERRORS.md ("| `function` | `NVFP4_...` | ... |"),
3. the table of tests/test_error_table.c (R(function, STATUS), RC(...) or RN(...)), which provokes each one.

Usage: check_error_table.py <source-root>. Exits 1 and lists the differences when they disagree.
"""
import glob
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..')


def from_headers():
    pairs = set()
    for h in sorted(glob.glob(os.path.join(root, 'include', 'nvfp4', '*.h'))):
        text = open(h, encoding='utf-8').read()
        for m in re.finditer(r'/\*\*((?:(?!\*/).)*?)\*/\s*NVFP4_API\s+[^;(]*?\b(nvfp4_\w+)\s*\(', text, re.S):
            for st in re.findall(r'@retval\s+(NVFP4_\w+)', m.group(1)):
                pairs.add((m.group(2), st))
    return pairs


def from_doc():
    pairs = set()
    for line in open(os.path.join(root, 'docs', 'ERRORS.md'), encoding='utf-8'):
        m = re.match(r'\|\s*`(nvfp4_\w+)`\s*\|\s*`(NVFP4_\w+)`\s*\|', line)
        if m:
            pairs.add((m.group(1), m.group(2)))
    return pairs


def from_test():
    text = open(os.path.join(root, 'tests', 'test_error_table.c'), encoding='utf-8').read()
    return {(fn, 'NVFP4_' + st) for fn, st in re.findall(r'\bR[CN]?\((nvfp4_\w+),\s*(\w+)\)', text)}


h, d, t = from_headers(), from_doc(), from_test()
bad = 0
for name, a, b in (('headers', h, 'docs/ERRORS.md'), ('headers', h, 'tests/test_error_table.c')):
    other = d if b.startswith('docs') else t
    for p in sorted(a - other):
        print('in the %s but not in %s: %s -> %s' % (name, b, p[0], p[1]))
        bad += 1
    for p in sorted(other - a):
        print('in %s but not in the headers: %s -> %s' % (b, p[0], p[1]))
        bad += 1
print('%d documented (function, status) pairs; %d differences' % (len(h), bad))
sys.exit(1 if bad else 0)
