"""The router's own Swedish replies (tool replies live with the tools)."""

GREETING = "Hej! Vad kan jag hjälpa dig med?"
UNAVAILABLE = "Jag kan inte svara på det just nu."
NOT_UNDERSTOOD = "Förlåt, jag förstod inte riktigt. Kan du säga det på ett annat sätt?"
