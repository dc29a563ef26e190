/** The features every gateway is built with, in no particular order (the pipeline orders stages). */

import type { FeatureFactory } from './pipeline/feature.js';

export const FEATURES: readonly FeatureFactory[] = [];
