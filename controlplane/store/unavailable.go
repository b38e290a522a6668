package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"syscall"

	gomysql "github.com/go-sql-driver/mysql"
)

// ErrUnavailable is what a client of the control plane is told in place of
// an error for which Unavailable is true. It names no host, port, user or
// database: the error it replaces does, and belongs in the control plane's
// log.
var ErrUnavailable = errors.New("the database is unavailable; try again")

// Unavailable reports whether err says that the database cannot be reached
// or used for now, rather than that the request was wrong: a connection
// refused, reset or timed out, a connection the driver gave up on, a MySQL
// server that is shutting down, read-only, out of connections or refusing
// this user, or a SQLite file still locked after the busy timeout or that
// cannot be read or written. Retrying later may succeed.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var (
		opErr  *net.OpError
		dnsErr *net.DNSError
		myErr  *gomysql.MySQLError
		// The SQLite driver's errors carry SQLite's result code.
		liteErr interface{ Code() int }
	)
	switch {
	case errors.Is(err, ErrUnavailable),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, gomysql.ErrInvalidConn), errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return true
	case errors.As(err, &opErr), errors.As(err, &dnsErr):
		return true // dialing, reading or writing the database's connection
	case errors.As(err, &myErr):
		return mysqlUnavailable[myErr.Number]
	case errors.As(err, &liteErr):
		return sqliteUnavailable[liteErr.Code()&0xff] // the primary code, without the extended part
	}
	return false
}

// mysqlUnavailable are the MySQL and MariaDB server errors that say the
// server cannot serve this control plane now, not that a statement was
// wrong.
var mysqlUnavailable = map[uint16]bool{
	1040: true, // ER_CON_COUNT_ERROR: too many connections
	1044: true, // ER_DBACCESS_DENIED_ERROR: the user may not use the database
	1045: true, // ER_ACCESS_DENIED_ERROR: wrong user or password
	1047: true, // ER_UNKNOWN_COM_ERROR: a Galera node not ready for clients
	1049: true, // ER_BAD_DB_ERROR: the database does not exist
	1053: true, // ER_SERVER_SHUTDOWN: shutting down
	1129: true, // ER_HOST_IS_BLOCKED: too many connection errors from this host
	1130: true, // ER_HOST_NOT_PRIVILEGED: this host may not connect
	1203: true, // ER_TOO_MANY_USER_CONNECTIONS
	1290: true, // ER_OPTION_PREVENTS_STATEMENT: read-only, as a replica during a failover
	1836: true, // ER_READ_ONLY_MODE
	1927: true, // ER_CONNECTION_KILLED (MariaDB)
	4031: true, // ER_CLIENT_INTERACTION_TIMEOUT: the server closed an idle connection
}

// sqliteUnavailable are the SQLite primary result codes that say the file
// cannot be used now.
var sqliteUnavailable = map[int]bool{
	5:  true, // SQLITE_BUSY: still locked by another writer after the busy timeout
	6:  true, // SQLITE_LOCKED
	10: true, // SQLITE_IOERR
	13: true, // SQLITE_FULL: the disk is full
	14: true, // SQLITE_CANTOPEN
}
