"""Independent verifier for a lottery audit log (seckill-lottery-audit/1), standard library only.

Written only from docs/lottery-verification.md ("The audit log", "The algorithm"), without reading
the implementation. Usage: python3 tests/verify_lottery_log.py LOG.json
"""
import hashlib, itertools, json, re, sys


def check(ok, name, why):
    if not ok:
        sys.exit(print(f"does not verify: {name}: {why}") or 1)


def sha(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify(log):
    seed, rules, draws = log["seed"], log["rules"], log["draws"]
    check(log["format"] == "seckill-lottery-audit/1", "format", f"unknown format {log['format']!r}")
    check(isinstance(seed, str) and re.fullmatch("[0-9a-f]{64}", seed), "seed", "not 64 lowercase hex digits")
    canonical = json.dumps(rules, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    check(sha(seed + ":" + canonical) == log["commitment"], "commitment", "does not match seed and rules")
    check(rules["algorithm"] == "seckill-lottery/1", "rules", f"unknown algorithm {rules['algorithm']!r}")
    tiers, stock = rules["tiers"], [t["stock"] for t in rules["tiers"]]
    ends = list(itertools.accumulate(t["weight"] for t in tiers))  # tier k takes slots [ends[k-1], ends[k])
    total, seen, batches, i = rules["blank_weight"] + sum(t["weight"] for t in tiers), {}, 0, 0
    while i < len(draws):  # one batch, or one draw with batch null, per turn
        b, j, landed = draws[i]["batch"], i + 1, []
        while b is not None and j < len(draws) and draws[j]["batch"] == b:
            j += 1
        batches += b is not None
        check(b is None or b == batches, f"draw {i + 1}", f"batch {b}, expected {batches}")
        for n, d in enumerate(draws[i:j], i + 1):
            seen[d["user"]] = seen.get(d["user"], 0) + 1
            check(d["draw_no"] == seen[d["user"]], f"draw {n}", f"draw_no {d['draw_no']}, expected {seen[d['user']]}")
            check(d["draw_no"] <= rules["draws_per_user"], f"draw {n}", f"draw_no {d['draw_no']} > draws_per_user")
            r = int(sha(f"{seed}:{rules['campaign_id']}:{d['user']}:{d['draw_no']}")[:8], 16)
            check(d["r"] == r, f"draw {n}", f"recorded r {d['r']}, recomputed {r}")
            landed.append(next((k for k, e in enumerate(ends) if r * total // 2**32 < e), None))  # None: blank
        check(b is not None or landed[0] is None, f"draw {i + 1}", "batch null, but not on the blank share")
        check(b is None or sum(stock) > 0, f"draw {i + 1}", "every tier was empty when its batch began")
        won = [None] * len(landed)
        for rnd in (1, 2):
            for m, k in enumerate(landed):
                left = [k] if rnd == 1 else [q for q in range(len(tiers)) if stock[q] > 0]
                if b is not None and k is not None and won[m] is None and left and stock[left[0]] > 0:
                    stock[left[0]], won[m] = stock[left[0]] - 1, left[0]
        for n, k in enumerate(won, i + 1):
            want, got = None if k is None else tiers[k]["position"], draws[n - 1]["tier"]
            check(got == want, f"draw {n}", f"recorded tier {got}, the rules give {f'tier {want}' if want else 'no prize'}")
        i = j
    for k, t in enumerate(tiers):
        got = log["stock_left"][k] if k < len(log["stock_left"]) else None
        check(got == stock[k], f"tier {t['position']}", f"stock_left {got}, the draws leave {stock[k]}")
    print(f"verified campaign {rules['campaign_id']}: {len(draws)} draws")


if __name__ == "__main__":
    try:
        verify(json.load(open(sys.argv[1], encoding="utf-8")))
    except (ValueError, KeyError, TypeError, IndexError) as e:
        check(False, "format", f"malformed log ({type(e).__name__}: {e})")
