# Known answers for modules/interp, computed directly (no bytecode):
# primes below P by trial division, and total Collatz steps of 1..C.
# Run: python3 modules/interp/known_answers.py
def primes(p):
    ps = [n for n in range(2, p) if all(n % d for d in range(2, int(n ** 0.5) + 1))]
    return len(ps), sum(ps)
def collatz(c):
    t = 0
    for k in range(1, c + 1):
        while k != 1:
            k = k // 2 if k % 2 == 0 else 3 * k + 1
            t += 1
    return t
for p, c in ((4000, 1000), (1000, 300)):
    n, s = primes(p)
    print("P=%d C=%d PRIMES %du PRIME_SUM %du COLLATZ %du" % (p, c, n, s, collatz(c)))
