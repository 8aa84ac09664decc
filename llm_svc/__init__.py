"""LLM service: tool selection and Swedish text generation."""
