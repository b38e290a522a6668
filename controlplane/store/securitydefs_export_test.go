package store

import "context"

// DropInboundSecurityColumns removes the columns of inbound security
// definitions (ca_pem and the others), as a database made before them
// lacks them.
func DropInboundSecurityColumns(ctx context.Context, s Store) error {
	m := s.(*sqlStore).w.WithContext(ctx).Migrator()
	for _, c := range []string{"ca_pem", "allowed_subjects", "allowed_sans", "introspection_url", "cache_seconds"} {
		if err := m.DropColumn(&securityRow{}, c); err != nil {
			return err
		}
	}
	return nil
}
