package ledger

import "fmt"

// Rows is what a SQL result (database/sql's *Rows) offers a reader of
// records: the stores that keep events in SQLite share ScanRecords.
type Rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close() error
}

// ScanRecords reads rows of (position, canonical bytes) into records,
// decoding each event, and closes rows.
func ScanRecords(rows Rows) ([]Record, error) {
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var r Record
		var pos int64
		if err := rows.Scan(&pos, &r.Canonical); err != nil {
			return nil, err
		}
		r.Position = uint64(pos)
		e, err := Decode(r.Canonical)
		if err != nil {
			return nil, fmt.Errorf("position %d: %w", pos, err)
		}
		r.Event = e
		out = append(out, r)
	}
	return out, rows.Err()
}
