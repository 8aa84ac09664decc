"""The router's own Swedish replies (tool replies live with the tools)."""

GREETING = "Hej! Vad kan jag hjälpa dig med?"
UNAVAILABLE = "Jag kan inte svara på det just nu."
NOT_UNDERSTOOD = "Förlåt, jag förstod inte riktigt. Kan du säga det på ett annat sätt?"
TOOL_REJECTED = "Det kunde jag inte göra. Kan du säga det på ett annat sätt?"
TOOL_LIMIT = "Du har nått gränsen för hur mycket jag kan spara åt dig. Ta bort något först."
TOOL_STORAGE_UNAVAILABLE = "Jag kommer inte åt dina uppgifter just nu. Försök igen om en stund."
