"""The agent desk: taking and answering conversations, assignment, SLA, CSAT, notices and figures."""
