/** The features every gateway is built with; the pipeline decides where each one's stage runs. */

import type { FeatureFactory } from '../pipeline/feature.js';
import { createMcpFeature } from '../mcp/feature.js';
import { createApprovalsFeature } from '../approvals/feature.js';
import { createVaultFeature } from '../vault/feature.js';
import { createLimitsFeature } from '../limits/feature.js';

export const FEATURES: readonly FeatureFactory[] = [createMcpFeature, createApprovalsFeature, createVaultFeature, createLimitsFeature];
