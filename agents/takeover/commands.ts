/** The takeover commands `ooo-agent` dispatches: apart from their code so the entry point can name them without loading it. */
export const TAKEOVER_COMMANDS = ["takeover", "mark-good", "trial-failed", "trial-watchdog", "slots"] as const;
