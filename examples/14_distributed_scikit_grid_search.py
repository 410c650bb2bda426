"""A grid search across estimator families, run on a pool's slots.

The guide's grid fits up to 200 trees per candidate; the sizes here keep
the search to seconds on a laptop. SKYWARD_FULL_GRID=1 runs the guide's.
"""

import os

from sklearn.datasets import load_digits
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.svm import SVC

import skyward as sky

FULL = os.environ.get("SKYWARD_FULL_GRID") == "1"

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=0)

# Pipeline with swappable classifier
pipe = Pipeline([("clf", SVC())])

# Search across different estimators AND their hyperparameters
param_grid = [
    {
        "clf": [RandomForestClassifier(random_state=0)],
        "clf__n_estimators": [50, 100, 200] if FULL else [10, 20],
    },
    {
        "clf": [GradientBoostingClassifier(n_estimators=100 if FULL else 5)],
        "clf__learning_rate": [0.01, 0.1],
    },
    {"clf": [SVC()], "clf__C": [0.1, 1, 10], "clf__kernel": ["rbf", "poly"]},
]

with sky.integrations.ScikitLearnPool(
    provider=sky.provider_from_env(),
    nodes=3 if FULL else 2,
    concurrency=4 if FULL else 2,
    image=sky.Image(pip=["scikit-learn"]),
):
    grid = GridSearchCV(pipe, param_grid, cv=5 if FULL else 3, n_jobs=-1)
    grid.fit(X_train, y_train)

print(f"Best: {type(grid.best_params_['clf']).__name__}")
print(f"Test score: {grid.score(X_test, y_test):.2%}")
