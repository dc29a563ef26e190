/** Types of scripts/openfga.mjs (shared by the TypeScript tests and the plain-JS benchmarks). */

export declare const OPENFGA_VERSION: string;
export declare function openFgaCandidates(): string[];
export declare function findOpenFgaBinary(): string | null;
export declare function openFgaRunArgs(options: { http: number; grpc: number; datastore?: readonly string[]; extra?: readonly string[] }): string[];
