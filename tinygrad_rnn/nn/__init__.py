"""Neural-network layers, losses and helpers, named as in ``torch.nn``."""
from . import functional, init, utils
from .activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import ModuleDict, ModuleList, Sequential
from .dropout import Dropout
from .flatten import Flatten
from .linear import Identity, Linear
from .loss import CrossEntropyLoss, MSELoss
from .module import Module, Parameter
from .gru import GRU, GRUCell
from .lstm import LSTM, LSTMCell
from .rnn import RNN, RNNCell
from .rnn_base import RNNBase, RNNCellBase

__all__ = ["Module", "Parameter", "Linear", "RNN", "RNNCell", "LSTM", "LSTMCell", "GRU",
           "GRUCell", "RNNBase", "RNNCellBase", "Tanh", "ReLU", "Sigmoid", "Softmax",
           "LogSoftmax", "Identity", "Flatten", "Sequential", "ModuleList", "ModuleDict", "Dropout", "MSELoss", "CrossEntropyLoss", "functional", "init", "utils"]
