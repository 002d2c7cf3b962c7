"""Per-rule job wall times from a Snakemake log (what docs/calibration.md and the README quote).

Usage: python benchmarks/job_times.py <snakemake stdout log>   (e.g. docs/update.sh output)
"""
import re, sys, datetime as dt
from collections import defaultdict
text = open(sys.argv[1]).read().splitlines()
ts = None; start = {}; info = {}; dur = {}
i = 0
cur_rule = None
for idx, line in enumerate(text):
    m = re.match(r"\[(\w{3} \w{3} +\d+ [\d:]+ \d{4})\]", line)
    if m:
        ts = dt.datetime.strptime(m.group(1), "%a %b %d %H:%M:%S %Y"); continue
    m = re.match(r"(local)?rule (\S+):", line)
    if m: cur_rule = m.group(2); cur_start = ts; continue
    m = re.match(r"\s+jobid: (\d+)", line)
    if m and cur_rule: start[m.group(1)] = cur_start; info[m.group(1)] = [cur_rule, None]; continue
    m = re.match(r"\s+wildcards: (.*)", line)
    if m and cur_rule: 
        jid = list(start)[-1]; info[jid][1] = m.group(1); continue
    m = re.match(r"Finished jobid: (\d+)", line)
    if m and m.group(1) in start: dur[m.group(1)] = (ts - start[m.group(1)]).total_seconds()
groups = defaultdict(list)
for j, d in dur.items():
    rule, wc = info[j]
    key = rule
    if rule == "train" and wc:
        w = dict(kv.split("=") for kv in wc.split(", "))
        key = f"train K{w['horizon']} {w['scheme'] if not w['scheme'].startswith('a2c_gamma') else 'a2c_gamma*'}"
    groups[key].append(d)
tot = 0
for k, v in sorted(groups.items()):
    tot += sum(v)
    print(f"{k:28s} n={len(v):3d} mean={sum(v)/len(v):6.1f}s sum={sum(v):7.0f}s")
print("total job-seconds", tot)
