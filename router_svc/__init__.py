"""Router service: public entry point that routes each request to fast, micro or planner."""
