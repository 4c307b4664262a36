package tomlfile

// Tables reads an array of tables ([[host]]) as the toml library decodes
// it into an `any`: either []map[string]any or []any of maps. ok is false
// when v is anything else (an inline array of values, a string...).
func Tables(v any) (elems []map[string]any, ok bool) {
	switch v := v.(type) {
	case []map[string]any:
		return v, true
	case []any:
		for _, x := range v {
			m, ok := x.(map[string]any)
			if !ok {
				return nil, false
			}
			elems = append(elems, m)
		}
		return elems, true
	}
	return nil, false
}
