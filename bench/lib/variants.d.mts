/** Types of bench/lib/variants.mjs (for the TypeScript unit tests). */

/** The Node flags R, F and the tuned Warden rows start with: the bin's own (src/cli/node-flags.ts), space-separated. */
export declare const WARDEN_NODE_FLAGS: string;
export declare const OBJECTS: number;
/** The rows (only the fields the unit tests read). */
export declare const VARIANTS: { id: string; kind: string; what: string }[];
export declare const MCP_BODY: string;
export declare const DEFAULT_VARIANTS: string[];
export declare const HEADLINE_VARIANTS: string[];
export declare const QUICK_VARIANTS: string[];
