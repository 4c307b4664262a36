package runs

import (
	"fmt"
	"strings"
	"testing"
)

func TestSeries(t *testing.T) {
	f := writeFixture(t, t.TempDir())
	r, err := Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sel    string
		labels string // the one series' full name
		t, v   []float64
		err    string
	}{
		{sel: `forgelab_link_loss_ratio{link=ab,from=a}`, labels: `forgelab_link_loss_ratio{from="a",lab="handover",link="ab"}`, t: []float64{1, 2}, v: []float64{0.1, 0.1}},
		{sel: `forgelab_link_loss_ratio{lab="handover", link="ab", from="b"}`, t: []float64{1, 2}, v: []float64{0.2, 0.2}}, // Gilbert-Elliott mean loss
		{sel: `forgelab_link_up{link=ca}`, t: []float64{1, 2}, v: []float64{0, 0}},
		{sel: `forgelab_link_rate_bytes_per_second{link=ab,from=a}`, t: []float64{1, 2}, v: []float64{1e7 / 8, 1e7 / 8}},
		{sel: `forgelab_link_delay_seconds{link=ab,from=a}`, t: []float64{1, 2}, v: []float64{0.02, 0.02}},
		{sel: `forgelab_link_dropped_packets_total{link=ab,from=a,cause=partition}`,
			labels: `forgelab_link_dropped_packets_total{cause="partition",from="a",lab="handover",link="ab"}`, t: []float64{1, 2}, v: []float64{3, 3}},
		{sel: `forgelab_link_rx_packets_total{link="a,b \"odd\""}`, err: "no samples"}, // counters unknown there: no values
		{sel: `forgelab_link_loss_ratio{link="a,b \"odd\""}`, t: []float64{2.5}, v: []float64{0.25}},
		{sel: `forgelab_link_queued_packets{link=ab,from=a}`, t: []float64{1, 2}, v: []float64{7, 7}},
		{sel: `forgelab_host_position_meters{host=a,axis=x}`, labels: `forgelab_host_position_meters{axis="x",host="a",lab="handover"}`,
			t: []float64{0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1, 1.1, 1.2, 1.3, 1.4, 1.5, 1.6, 1.7, 1.8, 1.9},
			v: []float64{0, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -14, -15, -16, -17, -18, -19}},
		{sel: `forgelab_host_up{host=edge1,kind=physical}`, t: []float64{0, 1}, v: []float64{0, 1}},
		{sel: `libvirt_domain_info_cpu_time_seconds_total{host=a}`, labels: `libvirt_domain_info_cpu_time_seconds_total{domain="fl-ab12-a",host="a",kind="vm",lab="handover"}`, t: []float64{0, 1}, v: []float64{1.5, 2.5}},
		{sel: `libvirt_domain_info_memory_usage_bytes{host=edge1}`, err: "no samples"},
		{sel: `libvirt_domain_interface_stats_transmit_packets_total{host=edge1,domain=""}`, t: []float64{0, 1}, v: []float64{8, 8}},
		{sel: `forgelab_workload_value{host=b,workload=bob,field=delivery}`, labels: `forgelab_workload_value{field="delivery",host="b",lab="handover",workload="bob"}`, t: []float64{0.2, 1.2, 2.2}, v: []float64{1, 0.75, 0.5}},
		{sel: `forgelab_workload_value{workload=bob,field=stats.lat}`, t: []float64{1.2}, v: []float64{3}},
		{sel: `forgelab_workload_value{field=ok}`, t: []float64{0.2}, v: []float64{1}},
		{sel: `forgelab_workload_value{field=workload_t}`, t: []float64{1.2}, v: []float64{99}},
		{sel: `forgelab_scenario_events_total{action=link.set}`, t: []float64{0.5, 1.5}, v: []float64{1, 2}},

		// Several series, or none, or a wrong question: errors that say
		// what to add or fix.
		{sel: `forgelab_link_loss_ratio{link=ab}`, err: "matches 2 series"},
		{sel: `forgelab_link_dropped_packets_total{link=ab,from=a}`, err: "matches 7 series"},
		{sel: `forgelab_link_loss_ratio{link=zz}`, err: "no samples"},
		{sel: `forgelab_link_los_ratio{link=ab}`, err: "has no metric forgelab_link_los_ratio; it has: "},
		{sel: `forgelab_link_loss_ratio{lnk=ab}`, err: `has no label "lnk" (its labels: lab, link, from)`},
		{sel: `forgelab_link_loss_ratio{lab=other}`, err: "is of lab handover"},
		{sel: `forgelab_workload_value{host=b}`, err: "needs field=NAME"},
		{sel: `forgelab_workload_value{field=nope}`, err: "no samples"},
		{sel: `forgelab_scenario_events_total{host=a}`, err: `no label "host"`},
		{sel: `{link=ab}`, err: "no metric name"},
		{sel: `forgelab_link_up{link=ab`, err: "missing '}'"},
		{sel: `forgelab_link_up{link}`, err: "is not label=value"},
	}
	for _, tt := range tests {
		t.Run(tt.sel, func(t *testing.T) {
			s, err := r.Series(tt.sel)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.labels != "" && s.String() != tt.labels {
				t.Errorf("series %s, want %s", s, tt.labels)
			}
			if fmt.Sprint(s.T) != fmt.Sprint(tt.t) || fmt.Sprint(s.V) != fmt.Sprint(tt.v) {
				t.Errorf("t %v v %v, want t %v v %v", s.T, s.V, tt.t, tt.v)
			}
		})
	}
}

func TestSelectAll(t *testing.T) {
	f := writeFixture(t, t.TempDir())
	r, err := Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sel  string
		want []string
	}{
		{`forgelab_link_loss_ratio{link=ab}`, []string{
			`forgelab_link_loss_ratio{from="a",lab="handover",link="ab"}`,
			`forgelab_link_loss_ratio{from="b",lab="handover",link="ab"}`}},
		{`forgelab_host_position_meters{host=b}`, []string{
			`forgelab_host_position_meters{axis="x",host="b",lab="handover"}`,
			`forgelab_host_position_meters{axis="y",host="b",lab="handover"}`,
			`forgelab_host_position_meters{axis="z",host="b",lab="handover"}`}},
		{`forgelab_workload_value{field=delivery}`, []string{
			`forgelab_workload_value{field="delivery",host="b",lab="handover",workload="bob"}`}},
		{`forgelab_scenario_events_total`, []string{`forgelab_scenario_events_total{action="link.set",lab="handover"}`}},
	}
	for _, tt := range tests {
		all, err := r.Select(tt.sel)
		if err != nil {
			t.Errorf("%s: %v", tt.sel, err)
			continue
		}
		var got []string
		for _, s := range all {
			got = append(got, s.String())
		}
		if fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s:\n got %v\nwant %v", tt.sel, got, tt.want)
		}
	}
}
