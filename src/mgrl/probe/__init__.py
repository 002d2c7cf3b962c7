"""Meta-gradient estimator probes: variance, bias and signal-to-noise on saved training states.

A probe freezes one training state (a checkpoint of the seed's ``a2c`` baseline run) and draws
meta-gradient samples from it for every horizon K and scheme w, one per key m::

    g_m = grad_eta sum_k w_k L'(theta_k; R_k^(m)),   m = 1..M,   keys key_1..key_M (fresh rollouts)

Each sample shares the state (theta_0, optimiser state s_0, environments, stored rollout R_0) and
differs only in the rollouts R_1..R_K collected inside the window, so the statistics describe the
estimator's noise *conditional on the state*.

One forward pass per key. The first k steps of a K-window equal the k-window with the same key,
so the Jacobian J_m [K_ref, D] of the outer losses l_1..l_Kref w.r.t. eta, computed in forward
mode in one pass (:meth:`mgrl.agent.MetaGradientAgent.outer_loss_jacobian`), gives every
weighting scheme's sample at every K <= K_ref: g_m(K, w) = w @ J_m[:K]. The reference, ``last`` at
K_ref = probe.reference_horizon, is row K_ref of the same pass: g_ref,m = J_m[K_ref - 1]. So the
M_ref reference samples and the M estimate samples share their first min(M, M_ref) keys (paired
samples); keys beyond M_ref, if M > M_ref, get a pass at K_max only. Sharing keys neither helps
nor hurts the variance of the bias statistics (measured: docs/probes.md), and it makes the
estimates free once the reference is paid for. Schemes whose agent differs (their own outer
critic) get their own forward pass at K_max with the same keys; ``bmg`` schemes (not a weighting
of the outer losses) a reverse-mode gradient per (K, scheme), with the same keys.

Statistics over every meta-parameter's direction, D = 2 (gamma and lambda, learned or not), from
:func:`mgrl.stats.estimator_statistics`: ``step_cosine`` (the angle between the expected Adam
steps of the estimator and of the reference, the bias measure of C1), the variance trace, SNR,
the direction variance, the raw-mean cosine and the debiased squared bias (paired-corrected). 95%
confidence intervals are percentile bootstraps that resample the paired keys together
(:func:`mgrl.stats.bootstrap_intervals`), inside each statistic's range.

Common random numbers: every (K, scheme) of a state uses the same keys, so schemes and horizons
are compared on identical rollouts (a ``bmg`` window's first K updates are those of the K-step
window); estimators that coincide (same weights, or the same non-weighting kind with the same
resolved settings, and the same outer-advantage source; all weighting schemes at K = 1, and
schemes that differ only in ``meta_samples``: :func:`mgrl.runs.sample_identity`) are computed
once and shared. A
``bmg`` sample is the gradient of its KL matching loss; its scale differs from a policy-gradient
loss's, so compare estimators by the scale-free statistics (step cosine, SNR, direction variance).
"""

from mgrl.probe.columns import SAMPLE_COLUMNS, SUMMARY_COLUMNS
from mgrl.probe.run import run_probe
from mgrl.probe.sampling import (over_keys, return_advantages, sample_meta_gradients,
                                 sample_outer_loss_jacobians, sample_return_references)
from mgrl.probe.states import (PASS_STREAM, PROBE_STREAM, SOURCE_HORIZON, SOURCE_SCHEME,
                               SchemeAgents, find_probe_checkpoint, load_probe_state, probe_keys)
from mgrl.probe.statistics import SUMMARY_STATISTICS, summarise_samples

__all__ = ["SAMPLE_COLUMNS", "SUMMARY_COLUMNS", "run_probe", "over_keys", "return_advantages",
           "sample_meta_gradients", "sample_outer_loss_jacobians", "sample_return_references",
           "PASS_STREAM", "PROBE_STREAM", "SOURCE_HORIZON", "SOURCE_SCHEME", "SchemeAgents",
           "find_probe_checkpoint", "load_probe_state", "probe_keys", "SUMMARY_STATISTICS",
           "summarise_samples"]
