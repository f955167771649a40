package bench

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The raw phases write the same table with the same constraints and triggers as the API, as the owner
// and without the API's transaction set-up, validation or function: the ceiling the API is compared to.
const (
	insertOneSQL = `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id,
	                                   latitude, longitude, accuracy, sequence_number)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT DO NOTHING`

	insertBatchSQL = `INSERT INTO gps_locations (organization_id, session_id, recorded_at, employee_id,
                           latitude, longitude, accuracy, sequence_number)
SELECT $1::uuid, $2::uuid, u.at, $3::uuid, u.lat, u.lon, u.acc, u.seq
  FROM unnest($4::timestamptz[], $5::float8[], $6::float8[], $7::float8[], $8::int4[])
       AS u(at, lat, lon, acc, seq)
ON CONFLICT DO NOTHING`
)

// rawSingle is phase A1: one row per statement, each statement its own (autocommit) transaction.
func rawSingle(pool *pgxpool.Pool, f *fleet, workers int) phase {
	return phase{id: "A1", path: "SQL `INSERT … VALUES`, 1 row/tx", batch: 1,
		newWorker: func(w int) work {
			return f.roundRobin(w, workers, func(ctx context.Context, m *member) (int, bool, error) {
				fx, err := m.nextFix(time.Now())
				if err != nil {
					return 0, false, err
				}
				tag, err := pool.Exec(ctx, insertOneSQL, f.orgID, m.sessionID, fx.recordedAt, m.employeeID,
					fx.lat, fx.lon, fx.accuracy, fx.seq)
				if err != nil {
					return 0, false, err
				}
				return int(tag.RowsAffected()), tag.RowsAffected() == 0, nil
			})
		}}
}

// columns holds one batch as the arrays unnest takes; a worker reuses its own.
type columns struct {
	at       []time.Time
	lat, lon []float64
	acc      []float64
	seq      []int32
}

func (c *columns) fill(m *member, n int) error {
	c.at, c.lat, c.lon, c.acc, c.seq = c.at[:0], c.lat[:0], c.lon[:0], c.acc[:0], c.seq[:0]
	now := time.Now()
	for range n {
		fx, err := m.nextFix(now)
		if err != nil {
			return err
		}
		c.at, c.lat, c.lon = append(c.at, fx.recordedAt), append(c.lat, fx.lat), append(c.lon, fx.lon)
		c.acc, c.seq = append(c.acc, fx.accuracy), append(c.seq, fx.seq)
	}
	return nil
}

// rawBatch is phase A2: BatchSize rows of one session per statement (INSERT … SELECT FROM unnest),
// each statement its own transaction, as POST /locations/batch does it.
func rawBatch(pool *pgxpool.Pool, f *fleet, workers int) phase {
	return phase{id: "A2", path: "SQL `INSERT … SELECT unnest`, 100 rows/tx", batch: BatchSize,
		newWorker: func(w int) work {
			var c columns
			return f.roundRobin(w, workers, func(ctx context.Context, m *member) (int, bool, error) {
				if err := c.fill(m, BatchSize); err != nil {
					return 0, false, err
				}
				tag, err := pool.Exec(ctx, insertBatchSQL, f.orgID, m.sessionID, m.employeeID,
					c.at, c.lat, c.lon, c.acc, c.seq)
				if err != nil {
					return 0, false, err
				}
				return int(tag.RowsAffected()), tag.RowsAffected() < BatchSize, nil
			})
		}}
}
