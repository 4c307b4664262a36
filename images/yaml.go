package images

import (
	"bytes"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The cloud-init documents are typed values (cloudConfig, networkConfig,
// metaData in seed.go) marshalled by go.yaml.in/yaml/v3, the library
// guestinit reads them back with. cloud-init reads them with PyYAML, a
// YAML 1.1 parser: yaml/v3 already quotes strings YAML 1.1 would read as
// booleans, numbers or null, but not sexagesimal numbers ("52:54:00:12:34:56"
// is an integer to YAML 1.1). Values that may look like that (MAC and IP
// addresses, keys, hashes, sudo rules) are of type quoted, always
// double-quoted.

// quoted is a string always written double-quoted.
type quoted string

func (q quoted) MarshalYAML() (any, error) {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Style: yaml.DoubleQuotedStyle, Value: string(q)}, nil
}

func quotedAll(ss []string) []quoted {
	out := make([]quoted, len(ss))
	for i, s := range ss {
		out[i] = quoted(strings.TrimSpace(s))
	}
	return out
}

// ordered is a mapping that keeps the order its entries were added in
// (a Go map would be written sorted): network-config's ethernets follow
// the VM's NICs.
type ordered struct{ node yaml.Node }

func (o *ordered) add(key string, v any) error {
	var val yaml.Node
	if err := val.Encode(v); err != nil {
		return err
	}
	o.node.Kind = yaml.MappingNode
	o.node.Content = append(o.node.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: key}, &val)
	return nil
}

func (o ordered) MarshalYAML() (any, error) { return &o.node, nil }

// yamlDoc renders v as a YAML document (2-space indents), optionally
// preceded by a header line such as "#cloud-config".
func yamlDoc(header string, v any) ([]byte, error) {
	var b bytes.Buffer
	if header != "" {
		b.WriteString(header + "\n")
	}
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
