package portal

import (
	"errors"
	"fmt"
	"html/template"
	"time"
)

var funcs = template.FuncMap{
	"fmtTime": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		case *time.Time:
			if v == nil {
				return ""
			}
			return v.UTC().Format("2006-01-02 15:04:05 UTC")
		}
		return fmt.Sprint(t)
	},
	"fmtDate": func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.UTC().Format(day)
	},
	"short": short,
	"inc":   func(i int) int { return i + 1 },
	"pct":   func(f float64) string { return fmt.Sprintf("%.0f%%", 100*f) },
	// dict builds a map for passing several values to a template.
	"dict": func(kv ...any) (map[string]any, error) {
		if len(kv)%2 != 0 {
			return nil, errors.New("dict: odd number of arguments")
		}
		m := make(map[string]any, len(kv)/2)
		for i := 0; i < len(kv); i += 2 {
			k, ok := kv[i].(string)
			if !ok {
				return nil, errors.New("dict: keys are strings")
			}
			m[k] = kv[i+1]
		}
		return m, nil
	},
}
