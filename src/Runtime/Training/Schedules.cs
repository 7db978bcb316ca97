using CnnDsl.Graph;

namespace CnnDsl.Runtime.Training;

/// <summary>
/// The per-step part of a learning-rate schedule: what the rate is multiplied by at step t
/// (0-based, counted over the whole run: epoch x batches + batch) of a run of `total` steps.
/// A function of the step alone, so a resumed run continues exactly.
/// </summary>
public static class Schedules
{
    /// <param name="warmupSteps">linear warm-up: step t of the first W has (t + 1) / W (PyTorch's
    /// LinearLR(start_factor=1/W, total_iters=W-1)); 0 for none.</param>
    public static double StepFactor(Schedule? schedule, long warmupSteps, long t, long total)
    {
        if (schedule is Schedule.OneCycle one) return OneCycle(one.pctStart, one.linear, t, total);
        if (warmupSteps > 0 && t < warmupSteps) return (t + 1) / (double)warmupSteps;
        if (schedule is { IsCosine: true })
        {
            // Keras's CosineDecay(decay_steps = the steps after the warm-up), PyTorch's CosineAnnealingLR(T_max = those steps)
            long steps = total - warmupSteps;
            if (steps <= 0) return 1;
            return 0.5 * (1 + Math.Cos(Math.PI * Math.Min(t - warmupSteps, steps) / steps));
        }
        return 1;
    }

    /// <summary>PyTorch 1.13's OneCycleLR (three_phase False) as a fraction of max_lr: from
    /// 1/25 up to 1 until step pct T - 1, then down to 1/(25 10^4) at step T - 1.</summary>
    public static double OneCycle(double pctStart, bool linear, long t, long total)
    {
        const double initial = 1 / 25.0, final = initial / 1e4;
        double peak = pctStart * total - 1, last = total - 1;
        double Anneal(double from, double to, double pct) =>
            linear ? (to - from) * pct + from : to + (from - to) / 2 * (Math.Cos(Math.PI * pct) + 1);
        if (t <= peak) return Anneal(initial, 1, peak <= 0 ? 1 : t / peak);
        return Anneal(1, final, last - peak <= 0 ? 1 : Math.Min(1, (t - peak) / (last - peak)));
    }
}
