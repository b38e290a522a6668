package auth

import (
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	reflectionv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"

	"github.com/weft-dev/weft/controlplane/store"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// Requirement is what a method asks of its caller.
type Requirement int

// The requirements, the token roles weakest first.
const (
	// Public methods need nothing: health, reflection (the API's shape is
	// no secret) and an agent's enrollment, which carries its join token.
	Public Requirement = iota + 1
	// AgentCert methods need an agent's verified client certificate.
	AgentCert
	// Viewer methods need a token of role viewer or stronger.
	Viewer
	// Deployer methods need a token of role deployer or admin.
	Deployer
	// Admin methods need a token of role admin.
	Admin
)

func (r Requirement) String() string {
	switch r {
	case Public:
		return "public"
	case AgentCert:
		return "agent certificate"
	case Viewer:
		return store.RoleViewer
	case Deployer:
		return store.RoleDeployer
	case Admin:
		return store.RoleAdmin
	}
	return "unknown"
}

// rank is the role rank a token needs; 0 for requirements that are not
// roles.
func (r Requirement) rank() int {
	switch r {
	case Viewer, Deployer, Admin:
		return int(r - Viewer + 1)
	}
	return 0
}

// RoleRank orders the roles: viewer 1, deployer 2, admin 3; 0 for a
// string that is no role.
func RoleRank(role string) int {
	switch role {
	case store.RoleViewer:
		return 1
	case store.RoleDeployer:
		return 2
	case store.RoleAdmin:
		return 3
	}
	return 0
}

// Policy is what every method of the control plane's port requires. A
// method missing here is refused to everyone, and TestPolicyCoversEveryMethod
// fails.
var Policy = map[string]Requirement{
	healthpb.Health_Check_FullMethodName:                                   Public,
	healthpb.Health_Watch_FullMethodName:                                   Public,
	healthpb.Health_List_FullMethodName:                                    Public,
	reflectionv1.ServerReflection_ServerReflectionInfo_FullMethodName:      Public,
	reflectionv1alpha.ServerReflection_ServerReflectionInfo_FullMethodName: Public,

	agentv1.AgentService_Enroll_FullMethodName:      Public,
	agentv1.AgentService_Renew_FullMethodName:       AgentCert,
	agentv1.AgentService_Sync_FullMethodName:        AgentCert,
	agentv1.AgentService_Commands_FullMethodName:    AgentCert,
	agentv1.AgentService_ClaimFiring_FullMethodName: AgentCert,
	agentv1.AgentService_RenewLeases_FullMethodName: AgentCert,
	agentv1.AgentService_ReportRuns_FullMethodName:  AgentCert,
	agentv1.AgentService_ReportStats_FullMethodName: AgentCert,

	adminv1.PackageService_Deploy_FullMethodName:              Deployer,
	adminv1.PackageService_ListPackages_FullMethodName:        Viewer,
	adminv1.PackageService_ListServices_FullMethodName:        Viewer,
	adminv1.PackageService_ListPackageVersions_FullMethodName: Viewer,
	adminv1.PackageService_GetPackage_FullMethodName:          Viewer,
	adminv1.PackageService_GetDeployStatus_FullMethodName:     Viewer,
	adminv1.PackageService_Rollback_FullMethodName:            Deployer,
	adminv1.PackageService_Undeploy_FullMethodName:            Deployer,

	adminv1.ChannelService_CreateChannel_FullMethodName: Deployer,
	adminv1.ChannelService_GetChannel_FullMethodName:    Viewer,
	adminv1.ChannelService_ListChannels_FullMethodName:  Viewer,
	adminv1.ChannelService_UpdateChannel_FullMethodName: Deployer,
	adminv1.ChannelService_DeleteChannel_FullMethodName: Deployer,

	adminv1.FleetService_ListAgents_FullMethodName:       Viewer,
	adminv1.FleetService_GetAgent_FullMethodName:         Viewer,
	adminv1.FleetService_Invoke_FullMethodName:           Deployer,
	adminv1.FleetService_ListAgentBackups_FullMethodName: Viewer,
	adminv1.FleetService_GetAgentLogs_FullMethodName:     Viewer,
	adminv1.FleetService_CreateJoinToken_FullMethodName:  Admin,
	adminv1.FleetService_ListJoinTokens_FullMethodName:   Admin,
	adminv1.FleetService_RevokeJoinToken_FullMethodName:  Admin,
	adminv1.FleetService_RevokeAgent_FullMethodName:      Admin,

	adminv1.AccessService_CreateToken_FullMethodName: Admin,
	adminv1.AccessService_ListTokens_FullMethodName:  Admin,
	adminv1.AccessService_RevokeToken_FullMethodName: Admin,
	adminv1.AccessService_WhoAmI_FullMethodName:      Viewer,

	adminv1.SecretsService_RotateKey_FullMethodName: Admin,

	adminv1.SecurityService_CreateSecurityDefinition_FullMethodName: Deployer,
	adminv1.SecurityService_GetSecurityDefinition_FullMethodName:    Viewer,
	adminv1.SecurityService_ListSecurityDefinitions_FullMethodName:  Viewer,
	adminv1.SecurityService_UpdateSecurityDefinition_FullMethodName: Deployer,
	adminv1.SecurityService_DeleteSecurityDefinition_FullMethodName: Deployer,

	adminv1.OutgoingService_CreateOutgoingConnection_FullMethodName: Deployer,
	adminv1.OutgoingService_GetOutgoingConnection_FullMethodName:    Viewer,
	adminv1.OutgoingService_ListOutgoingConnections_FullMethodName:  Viewer,
	adminv1.OutgoingService_UpdateOutgoingConnection_FullMethodName: Deployer,
	adminv1.OutgoingService_DeleteOutgoingConnection_FullMethodName: Deployer,
	adminv1.OutgoingService_PingOutgoingConnection_FullMethodName:   Deployer,

	adminv1.JobService_CreateJob_FullMethodName:   Deployer,
	adminv1.JobService_GetJob_FullMethodName:      Viewer,
	adminv1.JobService_ListJobs_FullMethodName:    Viewer,
	adminv1.JobService_UpdateJob_FullMethodName:   Deployer,
	adminv1.JobService_DeleteJob_FullMethodName:   Deployer,
	adminv1.JobService_PauseJob_FullMethodName:    Deployer,
	adminv1.JobService_ResumeJob_FullMethodName:   Deployer,
	adminv1.JobService_RunJob_FullMethodName:      Deployer,
	adminv1.JobService_ListJobRuns_FullMethodName: Viewer,

	adminv1.ConfigService_ExportConfig_FullMethodName: Viewer,
	adminv1.ConfigService_PlanConfig_FullMethodName:   Viewer,
	adminv1.ConfigService_ImportConfig_FullMethodName: Deployer,
	adminv1.ConfigService_ListAudit_FullMethodName:    Viewer,

	adminv1.StatsService_GetStats_FullMethodName:    Viewer,
	adminv1.StatsService_ListSamples_FullMethodName: Viewer,
	adminv1.StatsService_Tail_FullMethodName:        Viewer,
}
