"""Neural-network layers, losses and helpers, named as in ``torch.nn``."""
from . import functional, init, utils
from .activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import ModuleDict, ModuleList, Sequential
from .dropout import Dropout
from .embedding import Embedding
from .flatten import Flatten
from .gru import GRU, GRUCell
from .linear import Identity, Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss, NLLLoss
from .lstm import LSTM, LSTMCell
from .module import Module, Parameter
from .normalization import LayerNorm
from .rnn import RNN, RNNCell
from .rnn_base import RNNBase, RNNCellBase

__all__ = ["Module", "Parameter", "Linear", "Identity", "Embedding", "LayerNorm", "Flatten",
           "RNN", "RNNCell", "LSTM", "LSTMCell", "GRU", "GRUCell", "RNNBase", "RNNCellBase",
           "Tanh", "ReLU", "Sigmoid", "Softmax", "LogSoftmax", "Dropout",
           "Sequential", "ModuleList", "ModuleDict",
           "MSELoss", "L1Loss", "HuberLoss", "NLLLoss", "CrossEntropyLoss", "BCELoss",
           "BCEWithLogitsLoss", "functional", "init", "utils"]
