package spec

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/forgelab/forgelab/labs/mobility"
	"github.com/forgelab/forgelab/labs/scenario"
)

// staticQualityKeys are a link's static impairment keys: a link that
// names a quality model may set none of them.
var staticQualityKeys = []string{"rate", "delay", "jitter", "loss", "duplicate", "reorder", "corrupt", "limit", "distribution", "loss_burst"}

// models checks what package scenario reads from the lab file (mobility,
// [quality.NAME], [scenario]) and adds its problems to the lab file's, so
// that one Parse reports every problem at once.
func (p *parser) models(s *Spec, data []byte) {
	lm, err := scenario.ParseModels(p.file, data)
	p.merge(err)
	if lm != nil {
		for i, l := range s.Links {
			if l.Model == "" {
				continue
			}
			if _, ok := lm.Quality[l.Model]; !ok {
				p.errorf(p.lines.Find(fmt.Sprintf("link[%d].quality", i)), "link %q: quality model %q is not in the file (add a [quality.%s] table with model = \"range\", or use one of: %s)",
					l.Name, l.Model, l.Model, orNone(slices.Sorted(maps.Keys(lm.Quality))))
			}
		}
	}
	if !s.Scenario {
		return
	}
	_, err = scenario.ParseSection(p.file, data, ScenarioLab(s))
	p.merge(err)
}

// ScenarioLab is what a scenario may name in this lab.
func ScenarioLab(s *Spec) *scenario.Lab {
	lab := &scenario.Lab{}
	for _, h := range s.Hosts {
		lab.Hosts = append(lab.Hosts, h.Name)
	}
	for _, l := range s.Links {
		lab.Links = append(lab.Links, scenario.LabLink{Name: l.Name, Endpoints: l.Endpoints})
	}
	for _, w := range s.Workloads {
		lab.Workloads = append(lab.Workloads, w.Name)
	}
	return lab
}

// merge adds package scenario's errors to the lab file's.
func (p *parser) merge(err error) {
	if err == nil {
		return
	}
	var es scenario.Errors
	if !errors.As(err, &es) {
		p.errorf(0, "%v", err)
		return
	}
	for _, e := range es {
		p.errs = append(p.errs, &Error{File: e.File, Line: e.Line, Msg: e.Msg})
	}
}

// checkModels builds the mobility and quality models, which reads the
// ns-2 traces they name (relative to the lab file) and checks what needs
// the lab (a random model's start inside its bounds). Load runs it; Parse
// does not touch the filesystem.
func checkModels(s *Spec, data []byte) error {
	lm, err := scenario.ParseModels(s.File, data)
	if err != nil {
		return err
	}
	_, _, err = lm.Build(s.Lab.Seed, s.PositionOf, s.ReadRelative)
	if err == nil {
		return nil
	}
	p := &parser{file: s.File}
	p.merge(err)
	return p.errs
}

// PositionOf is a host's declared position.
func (s *Spec) PositionOf(host string) mobility.Vec {
	for _, h := range s.Hosts {
		if h.Name == host {
			return mobility.Vec(h.Position)
		}
	}
	return mobility.Vec{}
}

// ReadRelative reads a file named in the lab file, relative to it.
func (s *Spec) ReadRelative(name string) ([]byte, error) {
	if !filepath.IsAbs(name) {
		name = filepath.Join(filepath.Dir(s.File), name)
	}
	return os.ReadFile(name)
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return quotedOr(list)
}
