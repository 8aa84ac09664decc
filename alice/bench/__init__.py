"""Load harness: replay a traffic file through the router, measure the KPIs, check them against SLOs."""
