package provision

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// HostDeploy is the deploys for one host.
type HostDeploy struct {
	Host    string
	Client  *Client
	Deploys []Deploy
	Options DeployOptions
}

// HostReport is what DeployAll did on one host.
type HostReport struct {
	Host   string
	Report Report
	Err    error
}

// DeployAll deploys to several hosts, at most limit at once (a host's own
// deploys run in order). Every deploy of every host is planned first: a
// missing source or a bad path fails before any host is touched. The error
// joins every host's error, each naming its host.
func DeployAll(ctx context.Context, jobs []HostDeploy, limit int) ([]HostReport, error) {
	plans := make([][]plan, len(jobs))
	var errs []error
	for i, job := range jobs {
		for _, d := range job.Deploys {
			p, err := planDeploy(d, job.Options.Facts)
			if err != nil {
				errs = append(errs, fmt.Errorf("host %s: %w", job.Host, err))
				continue
			}
			plans[i] = append(plans[i], p)
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	reports := make([]HostReport, len(jobs))
	for i, job := range jobs {
		reports[i].Host = job.Host
	}
	var mu sync.Mutex
	err := forEach(ctx, len(jobs), limit, func(_ context.Context, i int) error {
		job := jobs[i]
		hr := HostReport{Host: job.Host}
		for _, p := range plans[i] {
			rep, err := job.Client.deployPlan(ctx, p, job.Options)
			hr.Report.add(rep)
			if err != nil {
				hr.Err = fmt.Errorf("host %s: %w", job.Host, err)
				break
			}
		}
		mu.Lock()
		reports[i] = hr
		if hr.Err != nil {
			errs = append(errs, hr.Err)
		}
		mu.Unlock()
		return nil // one host's failure does not stop the others
	})
	if err != nil {
		errs = append(errs, fmt.Errorf("deploy: %w", err))
	}
	return reports, errors.Join(errs...)
}

// forEach runs fn for 0..n-1 with at most limit at once and returns the
// first error; after an error no new calls start.
func forEach(ctx context.Context, n, limit int, fn func(ctx context.Context, i int) error) error {
	if limit <= 0 {
		limit = 1
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	sem := make(chan struct{}, limit)
loop:
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break loop
		}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}(i)
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
