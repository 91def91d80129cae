/** The default model's inputs, exactly as the data set's header and the original /predict body name them. */
export const WINE_FEATURES = [
  'fixed acidity',
  'volatile acidity',
  'citric acid',
  'residual sugar',
  'chlorides',
  'free sulfur dioxide',
  'total sulfur dioxide',
  'density',
  'pH',
  'sulphates',
  'alcohol',
] as const;

export const WINE_TARGET = 'quality';

/** The original README's example request. */
export const WINE_EXAMPLE: Record<(typeof WINE_FEATURES)[number], number> = {
  'fixed acidity': 7.4,
  'volatile acidity': 0.7,
  'citric acid': 0.0,
  'residual sugar': 1.9,
  chlorides: 0.076,
  'free sulfur dioxide': 11.0,
  'total sulfur dioxide': 34.0,
  density: 0.9978,
  pH: 3.51,
  sulphates: 0.56,
  alcohol: 9.4,
};
