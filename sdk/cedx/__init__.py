"""cedx — Carbon Emission Data eXchange.

SDK and reference implementation of the carbon-emission accounting data interfaces
(碳排放核算数据自动化获取报送接口技术规范, draft). See README.md for the map of the package.
"""

__version__ = "0.1.0"
