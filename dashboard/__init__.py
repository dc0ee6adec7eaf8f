"""The live web dashboard (`genesys ui`): a gRPC client of the coordinator that serves
experiment, leaderboard, design, lineage, jobs and budget pages, pushes the coordinator's
Watch stream to the browser as server-sent events, and forwards admin actions only with an
admin token the browser supplies. Every asset is served by the app (vendored with npm)."""
