export async function collectMain(_argv: string[]): Promise<number> { return 0; }
