"""Family `torch`: a PyTorch network for tables as a scikit-learn estimator.

Numeric inputs feed the network directly; categorical columns arrive as integer codes (the
preprocessing of this family ordinal-encodes them, unknown and missing as -1) and each gets
an embedding. PyTorch trains it (`pip install kubecycle[torch]`), on CUDA when `device` is
"auto" and the pod has a GPU. The fitted weights are kept as numpy arrays and predictions are
a numpy forward pass, so a fitted model pickles, converts to ONNX and serves without PyTorch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.utils.validation import check_is_fitted


def categorical_code_columns(x: np.ndarray, max_levels: int) -> list[int]:
    """Columns holding integer codes (whole numbers from -1, at most max_levels of them)."""
    columns = []
    for j in range(x.shape[1]):
        column = x[:, j]
        finite = column[np.isfinite(column)]
        if len(finite) and np.all(finite == np.round(finite)) and finite.min() >= -1 \
                and finite.max() < max_levels:
            columns.append(j)
    return columns


def embedding_rows(column: np.ndarray, levels: int) -> np.ndarray:
    """A code column as embedding rows: -1 (unknown or missing) and unseen codes are row 0."""
    codes = np.nan_to_num(column, nan=-1.0).astype(np.int64) + 1
    return np.where((codes < 0) | (codes >= levels), 0, codes)


class _TabularNet(BaseEstimator):
    """The shared network: embeddings for code columns, then ReLU layers with dropout."""

    def __init__(self, hidden_units: int = 128, layers: int = 2, dropout: float = 0.1,
                 learning_rate: float = 1e-3, weight_decay: float = 1e-5, epochs: int = 100,
                 batch_size: int = 256, embedding_dim: int = 8, max_embedding_levels: int = 1000,
                 patience: int = 10, validation_fraction: float = 0.1, device: str = "auto",
                 random_state: int | None = None) -> None:
        self.hidden_units = hidden_units
        self.layers = layers
        self.dropout = dropout
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.embedding_dim = embedding_dim
        self.max_embedding_levels = max_embedding_levels
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.device = device
        self.random_state = random_state

    # --- the numpy forward pass (predictions, serving, the ONNX graph's reference) -----------

    def _outputs(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "layers_")
        x = np.asarray(X, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} features, got {x.shape}")
        numeric = np.nan_to_num(x[:, self.numeric_columns_])
        pieces = [numeric] + [table[embedding_rows(x[:, column], len(table))]
                              for column, table in zip(self.categorical_columns_,
                                                       self.embeddings_, strict=True)]
        hidden = np.concatenate(pieces, axis=1)
        for k, (weight, bias) in enumerate(self.layers_):
            hidden = hidden @ weight.T + bias
            if k < len(self.layers_) - 1:
                hidden = np.maximum(hidden, 0.0)
        return hidden

    # --- training with PyTorch --------------------------------------------------------------

    def _device(self, torch: Any) -> str:
        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def _network(self, torch: Any, cardinalities: list[int], numeric: int, outputs: int) -> Any:
        nn = torch.nn

        class Net(nn.Module):
            def __init__(net) -> None:
                super().__init__()
                net.embeddings = nn.ModuleList(
                    [nn.Embedding(levels, self.embedding_dim) for levels in cardinalities])
                width = numeric + self.embedding_dim * len(cardinalities)
                blocks: list[Any] = []
                for _ in range(self.layers):
                    blocks += [nn.Linear(width, self.hidden_units), nn.ReLU(),
                               nn.Dropout(self.dropout)]
                    width = self.hidden_units
                net.body = nn.Sequential(*blocks, nn.Linear(width, outputs))

            def forward(net, numbers: Any, codes: Any) -> Any:
                embedded = [table(codes[:, k]) for k, table in enumerate(net.embeddings)]
                return net.body(torch.cat([numbers, *embedded], dim=1))

        return Net()

    def _train(self, x: np.ndarray, y: np.ndarray, outputs: int, loss_name: str) -> None:
        """Fit the network on encoded rows x and targets y; keep the best epoch's weights."""
        try:
            import torch
        except ImportError:
            raise ImportError("family torch needs PyTorch: pip install 'kubecycle[torch]'") from None
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(int(rng.integers(2**31)))
        self.n_features_in_ = x.shape[1]
        self.categorical_columns_ = categorical_code_columns(x, self.max_embedding_levels)
        self.numeric_columns_ = [j for j in range(x.shape[1])
                                 if j not in self.categorical_columns_]
        cardinalities = [int(np.nanmax(np.append(x[:, j], -1))) + 2
                         for j in self.categorical_columns_]
        self.device_ = self._device(torch)
        net = self._network(torch, cardinalities, len(self.numeric_columns_), outputs)
        net.to(self.device_)
        codes = np.stack([embedding_rows(x[:, column], levels) for column, levels
                          in zip(self.categorical_columns_, cardinalities, strict=True)], axis=1) \
            if cardinalities else np.zeros((len(x), 0), dtype=np.int64)
        numbers = np.nan_to_num(x[:, self.numeric_columns_]).astype(np.float32)
        order = rng.permutation(len(x))
        held = order[:int(len(x) * self.validation_fraction)] if len(x) >= 50 else order[:0]
        fit_rows = order[len(held):]

        def tensors(rows: np.ndarray) -> tuple[Any, Any, Any]:
            target = torch.as_tensor(y[rows], device=self.device_)
            return (torch.as_tensor(numbers[rows], device=self.device_),
                    torch.as_tensor(codes[rows], device=self.device_), target)

        loss_fn = torch.nn.CrossEntropyLoss() if loss_name == "cross_entropy" else torch.nn.MSELoss()
        optimizer = torch.optim.AdamW(net.parameters(), lr=self.learning_rate,
                                      weight_decay=self.weight_decay)
        train_set, check_set = tensors(fit_rows), tensors(held if len(held) else fit_rows)
        best, best_state, waited = np.inf, None, 0
        for epoch in range(self.epochs):
            self.n_epochs_ = epoch + 1
            net.train()
            for batch in torch.randperm(len(fit_rows), device=self.device_).split(self.batch_size):
                optimizer.zero_grad()
                loss = loss_fn(net(train_set[0][batch], train_set[1][batch]), train_set[2][batch])
                loss.backward()
                optimizer.step()
            net.eval()
            with torch.no_grad():
                score = float(loss_fn(net(check_set[0], check_set[1]), check_set[2]))
            if score < best - 1e-6:
                best, waited = score, 0
                best_state = {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}
            else:
                waited += 1
                if waited >= self.patience:
                    break
        net.load_state_dict(best_state)
        self.embeddings_ = [table.weight.detach().cpu().numpy().astype(np.float32)
                            for table in net.embeddings]
        self.layers_ = [(layer.weight.detach().cpu().numpy().astype(np.float32),
                         layer.bias.detach().cpu().numpy().astype(np.float32))
                        for layer in net.body if isinstance(layer, torch.nn.Linear)]


class TabularNetClassifier(ClassifierMixin, _TabularNet):
    """The network for classification: softmax over the classes, any labels."""

    def fit(self, X: Any, y: Any) -> TabularNetClassifier:
        """Train on encoded rows X and labels y."""
        from sklearn.preprocessing import LabelEncoder

        encoder = LabelEncoder().fit(np.asarray(y))
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError("a classifier needs at least two classes")
        self._train(np.asarray(X, dtype=np.float32), encoder.transform(np.asarray(y)).astype(np.int64),
                    len(self.classes_), "cross_entropy")
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, columns in the order of classes_."""
        logits = self._outputs(X)
        logits = logits - logits.max(axis=1, keepdims=True)
        exp = np.exp(logits)
        return exp / exp.sum(axis=1, keepdims=True)

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label of each row."""
        return self.classes_[np.argmax(self._outputs(X), axis=1)]


class TabularNetRegressor(RegressorMixin, _TabularNet):
    """The network for regression: the target standardized while training."""

    def fit(self, X: Any, y: Any) -> TabularNetRegressor:
        """Train on encoded rows X and numeric targets y."""
        target = np.asarray(y, dtype=np.float64)
        self.y_mean_, self.y_scale_ = float(target.mean()), float(target.std() or 1.0)
        scaled = ((target - self.y_mean_) / self.y_scale_).astype(np.float32).reshape(-1, 1)
        self._train(np.asarray(X, dtype=np.float32), scaled, 1, "mse")
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets."""
        return self._outputs(X)[:, 0].astype(np.float64) * self.y_scale_ + self.y_mean_
