package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	gomysql "github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"github.com/weft-dev/weft/agent/shared/secrets"
)

// sqlStore is the Store on SQLite or MySQL.
//
// Every config change runs in a write transaction whose first statement
// locks the revision row (SELECT ... FOR UPDATE on MySQL; SQLite has one
// writer connection and BEGIN IMMEDIATE). Config writers are therefore
// serialised, so revisions are gap-free and in commit order, and the
// checks a change makes (is the path free, does the service exist) see
// every earlier commit: under REPEATABLE READ the snapshot is taken by the
// first plain read, which comes after the lock.
type sqlStore struct {
	w       *gorm.DB // writes; on MySQL also reads
	r       *gorm.DB // reads
	mysql   bool
	closers []*sql.DB
	log     *slog.Logger
	box     *secrets.Box // the key file's key: seals the data keys (see datakeys.go); nil: none configured
	keys    keyring      // the data keys, which seal secret values
	// keyReads reads a data key a value names (see dataKey) on a
	// connection of its own, so that a read never waits for a connection
	// its callers hold.
	keyReads *gorm.DB
	pruned   sync.Map // job name -> when this process last pruned its runs
	// statsKeep is how long statistics are kept; zero fields take
	// DefaultStatsRetention's.
	statsKeep StatsRetention
}

var _ Store = (*sqlStore)(nil)

// maxAttempts bounds the retries of a transaction that MySQL aborted as a
// deadlock (or a Galera certification failure, which reports the same).
const maxAttempts = 5

// errNoChange is returned by a change function that found nothing to do.
var errNoChange = errors.New("no change")

// change runs fn in a write transaction holding the revision lock. fn gets
// the revision its change will have and returns a one-line summary for the
// revision log, or errNoChange to leave everything as it was. change
// returns the revision after the transaction.
func (s *sqlStore) change(ctx context.Context, author string, fn func(tx *gorm.DB, rev int64) (string, error)) (int64, error) {
	var result int64
	err := s.write(ctx, func(tx *gorm.DB) error {
		cur, err := s.lockRevision(tx)
		if err != nil {
			return err
		}
		if err := s.useNewestKey(tx); err != nil {
			return err
		}
		rev := cur + 1
		before, err := objectHashes(tx)
		if err != nil {
			return err
		}
		summary, err := fn(tx, rev)
		if errors.Is(err, errNoChange) {
			result = cur
			return nil
		}
		if err != nil {
			return err
		}
		res := tx.Exec("UPDATE weft_meta SET revision = revision + 1 WHERE id = ?", metaID)
		if res.Error != nil {
			return fmt.Errorf("bump revision: %w", res.Error)
		}
		if res.RowsAffected != 1 {
			return fmt.Errorf("bump revision: %d rows updated, want 1", res.RowsAffected)
		}
		if author == "" {
			author = authorOf(ctx)
		}
		at := now()
		if err := tx.Create(&changeRow{Revision: rev, At: at, Author: author, Summary: summary}).Error; err != nil {
			return fmt.Errorf("log revision %d: %w", rev, err)
		}
		after, err := objectHashes(tx)
		if err != nil {
			return err
		}
		if rows := auditChanges(rev, at, author, before, after); len(rows) > 0 {
			if err := tx.Create(&rows).Error; err != nil {
				return fmt.Errorf("audit revision %d: %w", rev, err)
			}
		}
		result = rev
		return nil
	})
	if err != nil {
		return 0, err
	}
	return result, nil
}

// write runs fn in a write transaction, again when MySQL reports a deadlock.
func (s *sqlStore) write(ctx context.Context, fn func(tx *gorm.DB) error) error {
	return s.retry(func() error { return s.w.WithContext(ctx).Transaction(fn) })
}

// retry runs fn again when MySQL aborted it as a deadlock.
func (s *sqlStore) retry(fn func() error) error {
	var err error
	for range maxAttempts {
		err = fn()
		if !s.mysql || !isDeadlock(err) {
			return err
		}
		s.log.Warn("store transaction deadlocked, retrying", "err", err)
	}
	return err
}

func isDeadlock(err error) bool {
	var me *gomysql.MySQLError
	return errors.As(err, &me) && me.Number == 1213 // ER_LOCK_DEADLOCK
}

// read runs fn in a read-only transaction that sees one snapshot.
func (s *sqlStore) read(ctx context.Context, fn func(tx *gorm.DB) error) error {
	if s.mysql {
		return s.r.WithContext(ctx).Transaction(fn, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	}
	return s.r.WithContext(ctx).Transaction(fn)
}

// lockRevision reads the revision and holds it until the transaction ends.
func (s *sqlStore) lockRevision(tx *gorm.DB) (int64, error) {
	q := "SELECT revision FROM weft_meta WHERE id = ?"
	if s.mysql {
		q += " FOR UPDATE"
	}
	var rev int64
	if err := tx.Raw(q, metaID).Row().Scan(&rev); err != nil {
		return 0, fmt.Errorf("lock revision: %w", err)
	}
	return rev, nil
}

func readRevision(tx *gorm.DB) (int64, error) {
	var rev int64
	if err := tx.Raw("SELECT revision FROM weft_meta WHERE id = ?", metaID).Row().Scan(&rev); err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return rev, nil
}

// Revision returns the current global config revision.
func (s *sqlStore) Revision(ctx context.Context) (int64, error) {
	return readRevision(s.r.WithContext(ctx))
}

// Close releases the database.
func (s *sqlStore) Close() error {
	var errs []error
	for _, db := range s.closers {
		errs = append(errs, db.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}
