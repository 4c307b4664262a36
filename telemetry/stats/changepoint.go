package stats

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// ChangePointOptions set ChangePoints. Start from DefaultChangePointOptions.
type ChangePointOptions struct {
	// MinSize is the fewest points on each side of a change point.
	MinSize int `json:"min_size"`
	// Alpha is the significance level of each change point's permutation
	// test.
	Alpha float64 `json:"alpha"`
	// Permutations is the number of random permutations per test.
	Permutations int `json:"permutations"`
	// Seed seeds the permutations.
	Seed uint64 `json:"seed"`
	// Max is the most change points returned; 0 means no limit.
	Max int `json:"max,omitempty"`
	// MaxPoints: longer series are first reduced to this many block
	// medians (MinSize then counts blocks), because the cost grows as n²;
	// 0 means no reduction.
	MaxPoints int `json:"max_points,omitempty"`
}

// DefaultChangePointOptions returns the settings of R's ecp::e.divisive
// (alpha 0.05, 199 permutations) with at least 6 points per side, as
// Chromium's dashboard uses, and series reduced to 500 points (an hour of
// 1 s samples becomes 7.2 s blocks), which takes about 0.2 s per change
// point on one core.
func DefaultChangePointOptions() ChangePointOptions {
	return ChangePointOptions{MinSize: 6, Alpha: 0.05, Permutations: 199, MaxPoints: 500}
}

// ChangePoint is a point where a series' distribution changes.
type ChangePoint struct {
	// Index is the first point of the new segment.
	Index int `json:"index"`
	// P is the permutation p-value at which this point was accepted.
	P float64 `json:"p"`
	// Energy is the divergence statistic Q of the split.
	Energy float64 `json:"energy"`
	// MeanBefore and MeanAfter are the means of the segments on either
	// side, bounded by the neighbouring change points.
	MeanBefore float64 `json:"mean_before"`
	MeanAfter  float64 `json:"mean_after"`
	// Change is (MeanAfter-MeanBefore)/|MeanBefore|, 0 when MeanBefore is 0.
	Change float64 `json:"change"`
}

// ChangePoints returns the significant change points of ys in index order,
// found by E-divisive (Matteson and James 2014, as in R's ecp and Chromium's
// dashboard). It splits the series where the energy distance between the
// two sides is largest,
//
//	Q = mk/(m+k) · [ 2/(mk) Σ|x-y| - 2/(m(m-1)) Σ_{i<j}|x_i-x_j| - 2/(k(k-1)) Σ_{i<j}|y_i-y_j| ],
//
// keeps the split when a permutation test finds it significant (the values
// of each current segment shuffled within it, p = (#{Q_perm ≥ Q}+1)/(R+1)),
// and repeats inside the segments until a test fails. Energy distance
// compares whole distributions, so it finds shifts in level and in spread
// without assuming normal data. Unlike ecp it ends each candidate segment
// at the segment's end rather than searching that end too, which finds the
// same single steps at a fraction of the cost, O(R·n²) per change point.
// The series needs at least 2·MinSize values to have any change point.
// On a series reduced to MaxPoints blocks, Index is the first sample of the
// block where the change shows, so it is exact to within one block.
func ChangePoints(ys []float64, opt ChangePointOptions) ([]ChangePoint, error) {
	if opt.MinSize < 2 || !(opt.Alpha > 0 && opt.Alpha < 1) || opt.Permutations < 1 || opt.Max < 0 ||
		(opt.MaxPoints != 0 && opt.MaxPoints < 2*opt.MinSize) {
		return nil, fmt.Errorf("change point options %+v out of range: start from stats.DefaultChangePointOptions", opt)
	}
	if err := checkSample("series", ys, 1); err != nil {
		return nil, err
	}
	work := ys
	var starts []int // first sample of each block, when reduced
	if opt.MaxPoints > 0 && len(ys) > opt.MaxPoints {
		n := len(ys)
		work = make([]float64, opt.MaxPoints)
		for b := range work {
			lo, hi := b*n/opt.MaxPoints, (b+1)*n/opt.MaxPoints
			work[b] = medianSorted(sorted(ys[lo:hi]))
			starts = append(starts, lo)
		}
	}
	found := eDivisive(work, opt)
	for i := range found {
		if starts != nil {
			found[i].Index = starts[found[i].Index]
		}
	}
	for i := range found {
		start, end := 0, len(ys)
		if i > 0 {
			start = found[i-1].Index
		}
		if i+1 < len(found) {
			end = found[i+1].Index
		}
		cp := &found[i]
		cp.MeanBefore = mean(ys[start:cp.Index])
		cp.MeanAfter = mean(ys[cp.Index:end])
		if cp.MeanBefore != 0 {
			cp.Change = (cp.MeanAfter - cp.MeanBefore) / math.Abs(cp.MeanBefore)
		}
	}
	return found, nil
}

// eDivisive returns the significant change points of ys in index order,
// with Index, P and Energy set.
func eDivisive(ys []float64, opt ChangePointOptions) []ChangePoint {
	rng := rand.New(rand.NewPCG(opt.Seed, 0x65646976)) // "ediv"
	bounds := []int{0, len(ys)}                        // segment edges, sorted
	var found []ChangePoint
	work := make([]float64, len(ys))
	for opt.Max == 0 || len(found) < opt.Max {
		tau, q := bestSplitAll(ys, bounds, opt.MinSize)
		if tau < 0 {
			break
		}
		// Permutation test: shuffle within each segment, so earlier change
		// points stay in place, and see how often chance alone gives a
		// split at least as strong anywhere.
		copy(work, ys)
		exceed := 0
		for r := 0; r < opt.Permutations; r++ {
			for s := 0; s+1 < len(bounds); s++ {
				seg := work[bounds[s]:bounds[s+1]]
				rng.Shuffle(len(seg), func(i, j int) { seg[i], seg[j] = seg[j], seg[i] })
			}
			if _, qp := bestSplitAll(work, bounds, opt.MinSize); qp >= q {
				exceed++
			}
		}
		p := float64(exceed+1) / float64(opt.Permutations+1)
		if p >= opt.Alpha {
			break
		}
		found = append(found, ChangePoint{Index: tau, P: p, Energy: q})
		bounds = append(bounds, tau)
		slices.Sort(bounds)
	}
	slices.SortFunc(found, func(a, b ChangePoint) int { return a.Index - b.Index })
	return found
}

// bestSplitAll returns the index and Q of the strongest split over all
// segments delimited by bounds, or -1 when no segment is long enough.
func bestSplitAll(ys []float64, bounds []int, minSize int) (int, float64) {
	best, bestQ := -1, math.Inf(-1)
	for s := 0; s+1 < len(bounds); s++ {
		lo := bounds[s]
		tau, q := bestSplit(ys[lo:bounds[s+1]], minSize)
		if tau >= 0 && q > bestQ {
			best, bestQ = lo+tau, q
		}
	}
	return best, bestQ
}

// bestSplit returns the split τ of ys into ys[:τ] and ys[τ:], both at least
// minSize long, with the largest energy statistic Q, and that Q; τ is -1
// when ys is shorter than 2·minSize. It runs in O(n²) by updating the sums
// of distances within each side as τ moves.
func bestSplit(ys []float64, minSize int) (int, float64) {
	q := energyProfile(ys, minSize)
	best, bestQ := -1, math.Inf(-1)
	for tau, v := range q {
		if tau >= minSize && tau <= len(ys)-minSize && v > bestQ {
			best, bestQ = tau, v
		}
	}
	return best, bestQ
}

// energyProfile returns Q(τ) for every τ in [minSize, n-minSize] (other
// entries are 0).
func energyProfile(ys []float64, minSize int) []float64 {
	n := len(ys)
	q := make([]float64, n+1)
	if n < 2*minSize {
		return q
	}
	// left[t] = Σ_{i<t} |y_i - y_t|, right[t] = Σ_{j>t} |y_t - y_j|.
	left := make([]float64, n)
	right := make([]float64, n)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			d := math.Abs(ys[i] - ys[j])
			left[j] += d
			right[i] += d
		}
	}
	var total float64
	for _, v := range left {
		total += v
	}
	// within[τ] for the left side grows by left[τ-1]; for the right side,
	// withinR(τ) = Σ_{t≥τ} right[t].
	withinL := 0.0
	withinR := total
	for tau := 1; tau < n; tau++ {
		withinL += left[tau-1]
		withinR -= right[tau-1]
		if tau < minSize || tau > n-minSize {
			continue
		}
		m, k := float64(tau), float64(n-tau)
		between := total - withinL - withinR
		e := 2*between/(m*k) - 2*withinL/(m*(m-1)) - 2*withinR/(k*(k-1))
		q[tau] = m * k / (m + k) * e
	}
	return q
}
