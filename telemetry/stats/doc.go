// Package stats holds the statistics behind `forgelab compare` and
// `forgelab bench`: summaries with distribution-free confidence intervals,
// two-sample tests (permutation test, Mann-Whitney U), a Firecracker-style
// regression verdict, hyperfine- and pyperf-style warnings, trend tests for
// soak runs (Mann-Kendall, Theil-Sen), change points (E-divisive) and
// condition buckets.
//
// Every function is pure: no global state, and the random parts (Monte Carlo
// permutation tests, E-divisive) take a seed so that the same input gives the
// same answer on every run.
//
// Values that may end up in JSON are never NaN or infinite: where a number
// is undefined the result says so with a field or an error instead.
package stats
