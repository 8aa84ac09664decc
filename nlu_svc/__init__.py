"""Swedish NLU service: intent, slots, confidence and route hint."""
