package stats

import (
	"fmt"
	"math"
	"strconv"
)

// Observation is one metric value with the condition it was measured
// under, e.g. goodput 41.2 Mbit/s while the link's loss was 3.5 %.
type Observation struct {
	Condition float64 `json:"condition"`
	Value     float64 `json:"value"`
}

// Bucket is the summary of the observations whose condition fell in
// [Lo, Hi) (the last bucket includes Hi).
type Bucket struct {
	Lo    float64 `json:"lo"`
	Hi    float64 `json:"hi"`
	Label string  `json:"label"` // "5-10"
	// Summary is set when N > 0.
	Summary Summary `json:"summary"`
	N       int     `json:"n"`
	// OfBest is this bucket's median divided by the best bucket's median:
	// 0.95 reads "kept 95 % of its goodput" for a higher-is-better metric,
	// 1.8 reads "latency 1.8 times its best" for a lower-is-better one.
	// It is 0 for an empty bucket or when the best median is 0.
	OfBest float64 `json:"of_best"`
}

// BucketTable is the result of Buckets.
type BucketTable struct {
	Buckets []Bucket `json:"buckets"`
	// Best is the index of the bucket with the best median (highest or
	// lowest by the metric's direction), -1 when all are empty.
	Best int `json:"best"`
	// Outside counts the observations whose condition fell outside the
	// edges.
	Outside int `json:"outside"`
}

// Buckets groups obs by condition into the buckets delimited by edges
// (strictly increasing, at least two: {0, 1, 5, 10} gives 0-1, 1-5 and
// 5-10), summarises each (median with its 95 % interval, see Summarize),
// and relates each median to the best bucket's, best by direction d. Each
// observation counts once, so the buckets are independent only as far as
// the observations are; medians make one bad stretch matter little.
func Buckets(obs []Observation, edges []float64, d Direction) (BucketTable, error) {
	if err := d.check(); err != nil {
		return BucketTable{}, err
	}
	if len(edges) < 2 {
		return BucketTable{}, fmt.Errorf("%d bucket edges given, need at least 2: e.g. 0,1,5,10 for 0-1 %%, 1-5 %%, 5-10 %%", len(edges))
	}
	for i, e := range edges {
		if math.IsNaN(e) || math.IsInf(e, 0) {
			return BucketTable{}, fmt.Errorf("bucket edge %d is %v: give finite edges", i, e)
		}
		if i > 0 && e <= edges[i-1] {
			return BucketTable{}, fmt.Errorf("bucket edges must increase, but edge %d (%g) is not above edge %d (%g): sort them and drop duplicates", i, e, i-1, edges[i-1])
		}
	}
	values := make([][]float64, len(edges)-1)
	t := BucketTable{Best: -1}
	for i, o := range obs {
		if math.IsNaN(o.Condition) || math.IsNaN(o.Value) || math.IsInf(o.Value, 0) {
			return BucketTable{}, fmt.Errorf("observation %d is (%v, %v): drop missing samples before bucketing", i, o.Condition, o.Value)
		}
		b := bucketOf(o.Condition, edges)
		if b < 0 {
			t.Outside++
			continue
		}
		values[b] = append(values[b], o.Value)
	}
	for i, vs := range values {
		b := Bucket{Lo: edges[i], Hi: edges[i+1], N: len(vs), Label: label(edges[i], edges[i+1])}
		if len(vs) > 0 {
			s, err := Summarize(vs)
			if err != nil {
				return BucketTable{}, fmt.Errorf("bucket %s: %w", b.Label, err)
			}
			b.Summary = s
			if t.Best < 0 || better(s.Median, t.Buckets[t.Best].Summary.Median, d) {
				t.Best = i
			}
		}
		t.Buckets = append(t.Buckets, b)
	}
	if t.Best >= 0 {
		best := t.Buckets[t.Best].Summary.Median
		for i := range t.Buckets {
			if t.Buckets[i].N > 0 && best != 0 {
				t.Buckets[i].OfBest = t.Buckets[i].Summary.Median / best
			}
		}
	}
	return t, nil
}

// bucketOf returns the index of the bucket holding c, or -1.
func bucketOf(c float64, edges []float64) int {
	last := len(edges) - 1
	if c < edges[0] || c > edges[last] {
		return -1
	}
	for i := 0; i < last; i++ {
		if c < edges[i+1] {
			return i
		}
	}
	return last - 1 // c == the top edge
}

func better(a, b float64, d Direction) bool {
	if d == HigherIsBetter {
		return a > b
	}
	return a < b
}

func label(lo, hi float64) string {
	return strconv.FormatFloat(lo, 'g', -1, 64) + "-" + strconv.FormatFloat(hi, 'g', -1, 64)
}
