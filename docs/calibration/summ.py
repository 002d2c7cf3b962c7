import sys, pandas as pd, numpy as np
from scipy import stats
for out in sys.argv[1:]:
    df = pd.read_parquet(f"{out}/metrics.parquet")
    n = df.interval.max(); q = df[df.interval > n - n//4]
    fr = q.groupby("seed")["train/episode_return"].mean()
    g = df[df.interval == n].set_index("seed")["meta/gamma"]
    g0 = df[df.interval == 1].set_index("seed")["meta/gamma"]
    m, s, k = fr.mean(), fr.std(ddof=1), len(fr)
    hw = stats.t.ppf(.975, k-1) * s / np.sqrt(k) if k > 1 else np.nan
    # curve: mean over seeds per interval
    curve = df.groupby("interval")["train/episode_return"].mean()
    # rising? slope over last quarter and mid comparisons
    lastq = curve[curve.index > n - n//4]
    slope = np.polyfit(lastq.index, lastq.values, 1)[0]
    t_int = df.groupby("interval")["perf/interval_seconds"].first().sum()
    comp = df["perf/compile_seconds"].iloc[0]
    steps = df.env_steps.max()
    print(f"{out}: steps={steps} n_int={n} final per-seed={np.round(fr.values,2).tolist()} mean={m:.3f} sd={s:.3f} CI=[{m-hw:.3f},{m+hw:.3f}] "
          f"gamma_end={np.round(g.values,3).tolist()} slope_lastq/int={slope:.3f} intervals_s={t_int:.1f} compile_s={comp:.1f}")
    print("   curve:", np.round(curve.values,2).tolist())
