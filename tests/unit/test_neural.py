"""Family torch's network: it learns from numbers and embedded codes, and predicts without PyTorch."""

import pickle
import subprocess
import sys

import numpy as np
import pytest

from kubecycle.neural import TabularNetClassifier, TabularNetRegressor, categorical_code_columns


def _rows(n: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A scaled numeric column and a code column (-1 for missing); the code decides the label."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(-1, 6, n).astype(float)
    numbers = rng.normal(size=n)
    return np.column_stack([numbers, codes]), codes


def test_code_columns_are_whole_numbers_from_minus_one():
    x = np.array([[0.3, 2.0, 1.0], [-1.2, -1.0, 0.0], [0.7, 5.0, np.nan]])
    assert categorical_code_columns(x, max_levels=1000) == [1, 2]
    assert categorical_code_columns(x, max_levels=3) == [2]


def test_the_classifier_learns_labels_carried_only_by_the_codes():
    x, codes = _rows()
    labels = np.where(codes % 2 == 0, "even", "odd")  # -1 (missing) is odd
    model = TabularNetClassifier(epochs=60, random_state=0).fit(x[:600], labels[:600])
    assert model.categorical_columns_ == [1] and model.device_ == "cpu"
    assert (model.predict(x[600:]) == labels[600:]).mean() > 0.95
    probabilities = model.predict_proba(x[600:])
    assert probabilities.shape == (200, 2) and np.allclose(probabilities.sum(axis=1), 1)
    assert list(model.classes_) == ["even", "odd"]
    unseen = x[:3].copy()
    unseen[:, 1] = [40, np.nan, -7]  # codes it never saw read as unknown, like -1
    assert set(model.predict(unseen)) <= {"even", "odd"}


def test_the_regressor_learns_a_smooth_target_and_an_embedded_offset():
    x, codes = _rows(1500, seed=1)
    y = 3 * x[:, 0] + np.where(codes == 2, 5.0, 0.0) + 100
    model = TabularNetRegressor(epochs=150, random_state=0).fit(x[:1200], y[:1200])
    residual = model.predict(x[1200:]) - y[1200:]
    assert 1 - (residual ** 2).sum() / ((y[1200:] - y[1200:].mean()) ** 2).sum() > 0.9


def test_a_fitted_network_predicts_where_pytorch_is_not_installed(tmp_path):
    x, codes = _rows(300)
    model = TabularNetClassifier(epochs=5, random_state=0).fit(x, codes > 2)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(model))
    np.save(tmp_path / "x.npy", x)
    code = ("import sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ImportError('not installed')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "import pickle, numpy as np\n"
            f"model = pickle.loads(open(r'{tmp_path / 'model.pkl'}', 'rb').read())\n"
            f"print(model.predict(np.load(r'{tmp_path / 'x.npy'}')).tolist())\n"
            "try:\n    model.fit(np.zeros((4, 2)), [0, 1, 0, 1])\n"
            "except ImportError as error:\n    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    predictions, message = result.stdout.strip().splitlines()
    assert predictions == str(model.predict(x).tolist())
    assert message == "family torch needs PyTorch: pip install 'kubecycle[torch]'"


def test_bad_inputs_are_refused():
    model = TabularNetClassifier(epochs=2).fit(*_rows(100))
    with pytest.raises(ValueError, match=r"expected 2 features"):
        model.predict(np.zeros((3, 5)))
    with pytest.raises(ValueError, match="at least two classes"):
        TabularNetClassifier(epochs=2).fit(np.zeros((10, 2)), ["a"] * 10)
