export async function refreshMain(_argv: string[]): Promise<number> { return 0; }
