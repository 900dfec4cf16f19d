# Known answers for modules/hash: zlib.crc32, FNV-1a and hashlib.sha256 over
# the xorshift32 byte stream. Run: python3 modules/hash/known_answers.py
import zlib, hashlib
def xs(s):
    s ^= (s << 13) & 0xffffffff; s ^= s >> 17; s ^= (s << 5) & 0xffffffff
    return s
def buf(n, seed=0x12345678):
    s = seed; out = bytearray()
    for _ in range(n):
        s = xs(s); out.append(s & 0xff)
    return bytes(out)
def fnv(b):
    h = 0x811C9DC5
    for c in b: h = ((h ^ c) * 0x01000193) & 0xffffffff
    return h
for n in (128*1024, 16*1024):
    b = buf(n)
    print(n, "crc 0x%08x" % zlib.crc32(b), "fnv 0x%08x" % fnv(b), "sha 0x%sull" % hashlib.sha256(b).hexdigest()[:16])
print(hashlib.sha256(b"abc").hexdigest()[:16])
