// Package stats holds the statistics behind `forgelab compare` and
// `forgelab bench`. Every function is pure: no global state, and the random
// parts take a seed, so the same input gives the same answer on every run.
// Results that may end up in JSON never hold NaN or ±Inf: where a number is
// undefined the result says so with a field, a warning or an error.
//
// Which function answers which question:
//
//   - How large, how sure? Summarize: median with a distribution-free 95 %
//     interval (order statistics, as benchstat), mean, stddev, min, max.
//   - Did it change? PermutationTest (difference of means, exact or Monte
//     Carlo) and MannWhitneyU (ranks). EnoughRuns and MinRunsPerSide say
//     how many runs a test needs before it can ever reach alpha.
//   - Is it a regression? Compare: Firecracker's gate (p < 0.01, change
//     beyond 5 % noise) with the user's tolerance (10 % worse), and Line
//     to print it as benchstat does.
//   - Can the runs be trusted? RunWarnings: hyperfine's slow first run and
//     outliers by modified Z-score, pyperf's instability.
//   - Does a soak run leak or degrade? Trend (Mann-Kendall and Theil-Sen).
//   - Did a series drop suddenly? ChangePoints (E-divisive).
//   - How well did it hold up under each condition? Buckets.
//
// The tests check the numbers against scipy 1.10 (the Python that computed
// each table is next to it), numpy, and a published Mann-Kendall worked
// example.
package stats
